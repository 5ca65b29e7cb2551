# Raw messages are kept for every email whose parse noted a problem, zlib-compressed. Rows
# stored before keep theirs as received (raw_compressed false): an unparsed row's content key
# is the hash of those bytes, whichever way they are stored (mailsync.backlog.content_key).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("mailsync", "0007_email_kind_and_gone_copies"),
    ]

    operations = [
        migrations.AddField(
            model_name="backlogemail",
            name="raw_compressed",
            field=models.BooleanField(
                default=False, help_text="raw is zlib-compressed (rows stored before 0008 are not)."
            ),
        ),
        migrations.AlterField(
            model_name="backlogemail",
            name="raw",
            field=models.BinaryField(
                blank=True,
                help_text="The message as received, kept when it could not be parsed or its "
                "parse noted a problem (up to VIGIL_MAILSYNC_RAW_KEEP_BYTES), for reparse_emails.",
                null=True,
            ),
        ),
    ]
