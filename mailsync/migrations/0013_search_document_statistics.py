"""PostgreSQL keeps the frequencies of 10,000 of the search document's words instead of 1,000
(crm.indexes.SEARCH_STATISTICS), and the backlog is analysed again. A word it keeps no
frequency for is taken for half the rarest one it keeps: at the default, any name or address
searched for was taken to be in 1 email of 200, so a rep's search tested each of their
emails (30 ms for 5,000) where the search index finds the 17 that hold the address (1 ms).
The larger sample makes an ANALYZE of the backlog slower (9 s at a million emails); it takes
no lock that stops the mailbox sync."""

from django.db import migrations

from crm.indexes import SEARCH_STATISTICS


def statistics(target: int):
    def apply(apps, schema_editor) -> None:
        if schema_editor.connection.vendor != "postgresql":
            return  # SQLite has no search document: it searches by substring
        schema_editor.execute(
            "ALTER TABLE mailsync_backlogemail"
            f" ALTER COLUMN search_document SET STATISTICS {int(target)}"
        )
        schema_editor.execute("ANALYZE mailsync_backlogemail")

    return apply


class Migration(migrations.Migration):
    dependencies = [
        ("mailsync", "0012_from_crm_indexes"),
    ]

    operations = [
        migrations.RunPython(statistics(SEARCH_STATISTICS), statistics(-1), elidable=True),
    ]
