"""Links are checked from now on (crm.links.validate_link); a link stored before that which a
browser could run as script or send off-site is neutralised: a notice, which has no object to
fall back to, leads to the dashboard, any other notification to its object."""

from django.db import migrations, models

import crm.links


def neutralise_unsafe_links(apps, schema_editor):
    Notification = apps.get_model("notifications", "Notification")
    linked = Notification.objects.exclude(link="").only("pk", "link").iterator(chunk_size=2000)
    unsafe = [n.pk for n in linked if not crm.links.is_safe_link(n.link)]
    rows = Notification.objects.filter(pk__in=unsafe)
    rows.filter(object_kind="notice").update(link="/")
    rows.exclude(object_kind="notice").update(link="")


class Migration(migrations.Migration):
    dependencies = [
        ("notifications", "0003_dashboard_index"),
    ]

    operations = [
        migrations.RunPython(neutralise_unsafe_links, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="notification",
            name="link",
            field=models.CharField(
                blank=True,
                db_default="",
                default="",
                help_text="Where a notice leads (notices only): a path on this site (/…) or an "
                "http(s) address.",
                max_length=500,
                validators=[crm.links.validate_link],
            ),
        ),
    ]
