"""The CRM pages: a finance role; a contact's status reason and audit trail (new columns on
crm_contact have a constant default or none, which PostgreSQL adds without rewriting the table).
The lists' indexes are built in 0007, without locking the tables."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0005_leads"),
    ]

    operations = [
        migrations.CreateModel(
            name="ContactStatusChange",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("at", models.DateTimeField()),
                (
                    "from_status",
                    models.CharField(
                        choices=[
                            ("active", "Active"),
                            ("bounced", "Bounced"),
                            ("unsubscribed", "Unsubscribed"),
                            ("rejected", "Rejected"),
                        ],
                        max_length=16,
                    ),
                ),
                (
                    "to_status",
                    models.CharField(
                        choices=[
                            ("active", "Active"),
                            ("bounced", "Bounced"),
                            ("unsubscribed", "Unsubscribed"),
                            ("rejected", "Rejected"),
                        ],
                        max_length=16,
                    ),
                ),
                ("reason", models.CharField(blank=True, default="", max_length=500)),
            ],
        ),
        migrations.AddField(
            model_name="contact",
            name="status_changed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="contact",
            name="status_reason",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="Why the contact has its status, e.g. why it was rejected.",
                max_length=500,
            ),
        ),
        migrations.AlterField(
            model_name="user",
            name="role",
            field=models.CharField(
                choices=[
                    ("rep", "Sales rep"),
                    ("manager", "Manager / account manager"),
                    ("admin", "Administrator"),
                    ("finance", "Finance"),
                ],
                default="rep",
                max_length=16,
            ),
        ),
        migrations.AddField(
            model_name="contactstatuschange",
            name="by",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.AddField(
            model_name="contactstatuschange",
            name="contact",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.CASCADE,
                related_name="status_changes",
                to="crm.contact",
            ),
        ),
        migrations.AddIndex(
            model_name="contactstatuschange",
            index=models.Index(
                fields=["contact", "-at", "-id"], name="contact_status_change_contact"
            ),
        ),
    ]
