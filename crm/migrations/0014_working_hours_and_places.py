"""Working hours of a team (its shifts), a user's alert and digest choices, and where accounts
and leads are (nurture sends in the lead's day). Every column is added with a constant default:
no table rewrite on PostgreSQL."""

import crm.countries
import crm.models
from django.db import migrations, models


def without_triggers(apps, schema_editor) -> None:
    # SQLite rebuilds crm_account to add a column and re-checks every trigger on the way;
    # the contact-team triggers read crm_account, so they go first (and come back below).
    if schema_editor.connection.vendor == "sqlite":
        from crm import triggers

        triggers.uninstall(schema_editor.connection)


def with_triggers(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "sqlite":
        from crm import triggers

        triggers.install(schema_editor.connection)


class Migration(migrations.Migration):
    dependencies = [
        ("crm", "0013_calendar_feed"),
    ]

    operations = [
        migrations.RunPython(without_triggers, with_triggers),
        migrations.AddField(
            model_name="account",
            name="country",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="ISO 3166 code, e.g. DE: the time zone and holidays its leads are emailed in.",
                max_length=2,
                validators=[crm.countries.validate_country],
            ),
        ),
        migrations.AddField(
            model_name="rph",
            name="country",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="ISO 3166 code, e.g. DE; blank: its contact's account's.",
                max_length=2,
                validators=[crm.countries.validate_country],
            ),
        ),
        migrations.AddField(
            model_name="rph",
            name="time_zone",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="The lead's IANA time zone, e.g. America/Chicago; blank: its country's.",
                max_length=64,
                validators=[crm.models.validate_time_zone],
            ),
        ),
        migrations.AddField(
            model_name="team",
            name="day_ends",
            field=models.TimeField(
                blank=True,
                help_text="Blank: the company's. At or before the start: the next day (a night shift).",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="team",
            name="day_starts",
            field=models.TimeField(blank=True, help_text="Blank: the company's.", null=True),
        ),
        migrations.AddField(
            model_name="team",
            name="work_days",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="The days worked, Monday 1 … Sunday 7, e.g. 12345; blank: the company's.",
                max_length=7,
                validators=[crm.models.validate_work_days],
            ),
        ),
        migrations.AddField(
            model_name="user",
            name="alerts_at_once",
            field=models.BooleanField(
                db_default=False,
                default=False,
                help_text="Overdue-job alerts reach this user at once, even off duty; otherwise they wait for the next working hour (when the company counts working time).",
            ),
        ),
        migrations.AddField(
            model_name="user",
            name="last_digest_on",
            field=models.DateField(
                blank=True,
                editable=False,
                help_text="The local day the last digest was for.",
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="user",
            name="morning_digest",
            field=models.BooleanField(
                db_default=False,
                default=False,
                help_text="Email a digest of the day's work at the start of each working day.",
            ),
        ),
        migrations.AlterField(  # the help text users and teams now share (crm.models.OwnHours)
            model_name="user",
            name="work_days",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="The days worked, Monday 1 … Sunday 7, e.g. 12345; blank: the company's.",
                max_length=7,
                validators=[crm.models.validate_work_days],
            ),
        ),
        migrations.RunPython(with_triggers, without_triggers),
    ]
