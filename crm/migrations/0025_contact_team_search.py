"""Contacts searched for a word past the walk of their list are read from indexes that give
the matches and little else.

A team's: a trigram GIN index of the name and the email whose first column is the team
(btree_gin), contact_team_search.

A rep's or a manager's contact search walks the team's names first (crm.matching); when the
matches lie past the walk (a first name: every "Nora …" after "A…" to "M…"), every match is
read and sorted. Without this index PostgreSQL read them by testing each of the team's
100,000 contacts in its name index (45 ms at a million contacts), or by ANDing the trigram
indexes' 25,000 matches with a bitmap of the team's 100,000 rows (16 ms); this index gives
the team's 2,500 matches alone (8 ms with the table reads).

Everyone's (an administrator's): the matches at the start of the name or the email are read
from their start indexes (crm 0022) without the table, and those further in from a trigram
index of each but its first character, contact_tail_search. A first name starts 25,000
contacts, one on every page of the table: reading them from the table took 29–70 ms, and
the start indexes give them in 9 (crm.matching, Search.read).

Built concurrently (crm.indexes): crm_contact holds a million rows or more in a large
company, and a plain CREATE INDEX would block every write to it for the whole build."""

from django.db import migrations

from crm.indexes import add_tail_trigram_index, add_team_trigram_index, drop_index

NAME, TAILS = "contact_team_search", "contact_tail_search"


def add(apps, schema_editor) -> None:
    add_team_trigram_index(schema_editor, "crm_contact", ("name", "email"), NAME)
    add_tail_trigram_index(schema_editor, "crm_contact", ("name", "email"), TAILS)


def drop(apps, schema_editor) -> None:
    drop_index(schema_editor, TAILS)
    drop_index(schema_editor, NAME)


class Migration(migrations.Migration):
    atomic = False  # PostgreSQL builds an index concurrently only outside a transaction

    dependencies = [
        ("crm", "0024_account_name_index_holds_the_key"),
    ]

    operations = [migrations.RunPython(add, drop, elidable=True)]
