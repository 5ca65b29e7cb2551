# Its own migration, so its own transaction: 0005 deletes rows, and PostgreSQL refuses to
# alter a table with their foreign-key checks still pending.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("mailsync", "0005_backlog_keyed_by_content"),
    ]

    operations = [
        migrations.AlterField(
            model_name="backlogemail",
            name="content_key",
            field=models.CharField(
                help_text="A hash of what the email says (transport headers left out), or "
                "outbox:<id> for the email the CRM sent.",
                max_length=255,
                unique=True,
            ),
        ),
        migrations.AlterField(
            model_name="backlogemail",
            name="sent_from_crm",
            field=models.BooleanField(
                default=False,
                help_text="The email of an outbox message, or a copy with its content.",
            ),
        ),
    ]
