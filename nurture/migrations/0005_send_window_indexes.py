"""The indexes a run claims enrollments by when send windows are on (nurture.windows), built
concurrently on PostgreSQL (crm.indexes), outside a transaction: nurture_enrollment holds a row
for every lead ever enrolled, and a plain CREATE INDEX would block every write to it, the
enrolment trigger on crm_rph's status changes included, for the whole build."""

from django.db import migrations, models

from crm.indexes import AddIndexWithoutLocking


class Migration(migrations.Migration):
    atomic = False  # PostgreSQL builds an index concurrently only outside a transaction

    dependencies = [
        ("nurture", "0004_send_windows_and_caps"),
    ]

    operations = [
        AddIndexWithoutLocking(
            model_name="enrollment",
            index=models.Index(
                condition=models.Q(("status", "active")),
                fields=["send_after"],
                name="nurture_send_after",
            ),
        ),
        AddIndexWithoutLocking(
            model_name="enrollment",
            index=models.Index(
                condition=models.Q(("status", "active")),
                fields=["send_until"],
                name="nurture_send_until",
            ),
        ),
    ]
