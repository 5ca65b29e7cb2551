"""A demo P2 sequence of four emails, and a month of its daily runs over the demo's Nurture P2
leads: leads at every step, some closed for inactivity, one suppressed, one replied, and in
several countries and time zones."""

from datetime import timedelta

from crm.models import RPH
from mailsync.models import Suppression
from mailsync.suppression import suppress
from nurture.jobs import send_due
from nurture.models import EmailTemplate, Sequence, Step
from nurture.services import record_reply

DAYS = 30
# Where the demo's leads are (time zone, country), in turn: their emails would go out in their
# own working day once Admin → Nurture send settings has a window; blank is the company's.
PLACES = [
    ("", "US"),
    ("", "GB"),
    ("America/Chicago", "US"),
    ("", ""),
    ("Asia/Tokyo", "JP"),
    ("", "DE"),
]
# name, days after the previous step, subject, body
STEPS = [
    (
        "P2 · 1 · Still looking?",
        0,
        "{{ first_name }}, is {{ company|default('your company') }} still looking?",
        "<p>Hello {{ first_name }},</p><p>A few weeks ago we talked about advertising for "
        "{{ company|default('your company') }}. Is it still on your list?</p>"
        "<p>{{ owner_name }}</p>",
    ),
    (
        "P2 · 2 · A case study",
        3,
        "How a company like {{ company|default('yours') }} filled its spring",
        "<p>Hi {{ first_name }},</p><p>One short story from a client in your sector, in case "
        "it helps.</p><p>{{ owner_name }} · {{ owner_email }}</p>",
    ),
    (
        "P2 · 3 · An offer",
        4,
        "{{ first_name }}, 15% off your first campaign",
        "<p>{{ first_name }},</p><p>Until the end of the month, your first campaign is 15% off."
        " Reply to this email and I will set it up.</p><p>{{ owner_name }}</p>",
    ),
    (
        "P2 · 4 · Last note",
        7,
        "Shall I close your file, {{ first_name }}?",
        "<p>{{ first_name }},</p><p>I have not heard back, so this is my last note. If the "
        "timing is wrong, just reply and I will write again later.</p><p>{{ owner_name }}</p>",
    ),
]


def seed(demo) -> None:
    if Sequence.objects.exists():
        return
    sequence = Sequence.objects.create(name="Nurture P2 (demo)", active=True, final_wait_days=14)
    for order, (name, wait, subject, body) in enumerate(STEPS, start=1):
        template = EmailTemplate.objects.create(name=name, subject=subject, body=body)
        Step.objects.create(sequence=sequence, order=order, template=template, wait_days=wait)
    leads = list(RPH.objects.filter(status=RPH.Status.NURTURE_P2).exclude(email="").order_by("pk"))
    if not leads:
        return
    start = demo.now - timedelta(days=DAYS)
    # Re-enter Nurture P2 on days spread over the month: the trigger enrols each from then.
    # The last enters two days before now: a run works as of the last daily slot
    # (nurture.windows.DAILY_AT), up to a day (25 hours across a DST change) before the run,
    # and a lead that entered after it would wait for tomorrow's, whatever the hour now.
    for n, rph in enumerate(leads):
        RPH.objects.filter(pk=rph.pk).update(status=RPH.Status.NEW)
        entered = start + timedelta(days=n * (DAYS - 2) // len(leads), hours=1)
        time_zone, country = PLACES[n % len(PLACES)]
        RPH.objects.filter(pk=rph.pk).update(
            status=RPH.Status.NURTURE_P2,
            status_changed_at=entered,
            time_zone=time_zone,
            country=country,
        )
    suppress(
        leads[-1].email, Suppression.Source.MANUAL, "Demo: asked by phone not to be emailed", start
    )
    for day in range(DAYS + 1):
        send_due(start + timedelta(days=day), durable=False)
    if len(leads) > 1:
        record_reply(leads[len(leads) // 2], demo.now)
