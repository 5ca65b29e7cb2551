"""Send windows and hourly caps (nurture.windows, nurture.caps): the settings' row, the counts
of the caps, and each enrollment's stored window (two nullable columns: no table rewrite).
0005 builds the enrollment indexes, concurrently on PostgreSQL."""

import crm.models
import datetime
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('crm', '0014_working_hours_and_places'),
        ('nurture', '0003_enrollment_pause_and_delivery_note'),
    ]

    operations = [
        migrations.CreateModel(
            name='SendCount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('kind', models.CharField(choices=[('domain', 'Recipient domain'), ('mailbox', 'Sending address')], max_length=8)),
                ('name', models.CharField(max_length=255)),
                ('hour', models.DateTimeField(help_text='The start of the hour (UTC).')),
                ('sent', models.PositiveIntegerField(default=0)),
                ('granted', models.PositiveIntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name='SendSettings',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('window', models.BooleanField(default=False, help_text="Send each step inside the window below, in the lead's time zone. Off: a day's steps go out from 08:00 company time, as they always have.")),
                ('window_days', models.CharField(blank=True, default='12345', help_text='The days emails go out, Monday 1 … Sunday 7, e.g. 234 for Tuesday to Thursday.', max_length=7, validators=[crm.models.validate_work_days])),
                ('window_starts', models.TimeField(default=datetime.time(9, 0), help_text="The window opens at this time of the lead's day.")),
                ('window_ends', models.TimeField(default=datetime.time(17, 0), help_text='And closes at this time of the same day (after the start).')),
                ('skip_holidays', models.BooleanField(default=True, help_text="Send nothing on a public holiday of the lead's country (the holidays library's), moving the step to the next window.")),
                ('domain_hourly_cap', models.PositiveIntegerField(default=0, help_text='At most this many nurture emails an hour to one recipient domain (e.g. gmail.com), counted across all workers; the rest wait for the next hour. 0: no cap.')),
                ('mailbox_hourly_cap', models.PositiveIntegerField(default=0, help_text="At most this many nurture emails an hour from one sending address (the server's DEFAULT_FROM_EMAIL), across all workers; the rest wait. 0: no cap.")),
            ],
            options={
                'verbose_name': 'nurture send settings',
                'verbose_name_plural': 'nurture send settings',
            },
        ),
        migrations.AddField(
            model_name='enrollment',
            name='send_after',
            field=models.DateTimeField(blank=True, help_text="The next step goes out at this instant at the earliest: the start of the lead's send window, or the next hour when an hourly cap held it back.", null=True),
        ),
        migrations.AddField(
            model_name='enrollment',
            name='send_until',
            field=models.DateTimeField(blank=True, help_text='The end of that send window; a step not sent by then moves to the next one.', null=True),
        ),
        migrations.AddIndex(
            model_name='sendcount',
            index=models.Index(fields=['hour'], name='nurture_count_hour'),
        ),
        migrations.AddConstraint(
            model_name='sendcount',
            constraint=models.UniqueConstraint(fields=('kind', 'name', 'hour'), name='nurture_count_once'),
        ),
    ]
