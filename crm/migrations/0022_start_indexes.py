"""The search box's one- and two-letter searches of accounts and contacts read an index alone.

The box lists the first ten accounts and contacts, by name, whose name (or a contact's email)
starts with the letters (crm.search). Two letters that start a common first name match a
block of the name order the walk does not reach (every "Nora …" after "A…" to "M…"), so every
match is read and sorted (crm.matching.first_keys). The prefix indexes of crm 0010 found the
matches, but each was then read from the table: 25,000 contacts starting with "no" took
75 ms of random reads at a million contacts. These hold the name, the key and the team as
well (and the email, the column a contact's email is tested on), so the matches are read
from the index alone: 7 ms a column.

They replace crm 0010's prefix indexes on the same columns, which they serve in full. Built
and dropped concurrently: crm_account and crm_contact hold a million rows or more in a large
company, and a plain CREATE INDEX would block every write to them for the whole build.
Until the next ANALYZE of a table, PostgreSQL reads the expression's statistics of its
trigram index, which it also keeps.

An index row holds at most 2,704 bytes. The contact's email is held twice (upper-cased and as
is) with the name: a form takes 254 characters of email, non-ASCII only in the domain (729
bytes at most, measured), and 200 of name (800 bytes), 2.3 kB in all; tested at that length
(tests/crm/test_index_migrations.py)."""

from django.db import migrations

from crm.indexes import (
    add_prefix_indexes,
    add_start_indexes,
    drop_prefix_indexes,
    drop_start_indexes,
    search_statistics,
)

SEARCHED = {"crm_account": ("name",), "crm_contact": ("name", "email")}
HELD = ("team_id", "name", "id")  # the visibility rule's column, the box's order, the key


def add_start(apps, schema_editor) -> None:
    add_start_indexes(schema_editor, SEARCHED, HELD)
    search_statistics(schema_editor.connection)


def drop_start(apps, schema_editor) -> None:
    drop_start_indexes(schema_editor, SEARCHED)


def drop_prefix(apps, schema_editor) -> None:
    drop_prefix_indexes(schema_editor, SEARCHED)


def add_prefix(apps, schema_editor) -> None:
    add_prefix_indexes(schema_editor, SEARCHED)
    search_statistics(schema_editor.connection)


class Migration(migrations.Migration):
    atomic = False  # PostgreSQL builds an index concurrently only outside a transaction

    dependencies = [
        ("crm", "0021_owned_teams_backfill"),
    ]

    operations = [
        migrations.RunPython(add_start, drop_start, elidable=True),
        migrations.RunPython(drop_prefix, add_prefix, elidable=True),
    ]
