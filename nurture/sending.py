"""What a nurture_send run does, step by step: enrol the leads the trigger could not, claim the
due enrollments a batch at a time, and for each one either send its step or, once every step
is out and the last wait has passed without a reply, close the lead for inactivity.

Exactly once per (enrollment, step). A batch is claimed with SELECT … FOR UPDATE SKIP LOCKED
inside one durable transaction, and everything it does commits with it: the outbox rows (key
`nurture:{enrollment}:{step}`), the SentStep rows (UNIQUE per enrollment and step) and the move
of each enrollment to its next step. A crash rolls all of it back and the next run does it
again; a second runner skips the rows the first one holds, and once those commit they are no
longer due. `last_run_at` lets a run work on an enrollment once per company day, so catching up
after an outage sends one step a day, and a re-run of the same day sends nothing more.

With a send window, a batch is claimed among the enrollments whose window is open
(windows.py); with hourly caps, the steps a cap does not grant stay due and are held to a
later run (caps.py, windows.hold), in the same transaction."""

import logging
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import DateTimeField, Exists, F, OuterRef, Value
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode

from crm.models import RPH
from crm.sql import insert_from_select
from mailsync import outbox
from mailsync.suppression import normalise, suppressed, unsubscribe_headers, unsubscribe_url
from notifications.services import notify
from nurture import caps, sandbox, windows
from nurture.models import Enrollment, SendSettings, SentStep, Sequence, Step, outbox_key

log = logging.getLogger(__name__)

BATCH = 1000  # enrollments per transaction
# What a step skipped (the enrollment stops) or a template failure changes on an enrollment.
ENDED_OR_FAILED = [
    "status",
    "stop_reason",
    "stopped_at",
    "next_due_at",
    "last_run_at",
    "last_error",
    "send_after",
    "send_until",
]
ACTIVE = Enrollment.Status.ACTIVE
INACTIVITY = "inactivity"


def enrol_missing(as_of: datetime) -> int:
    """Enrol, from `as_of`, every lead in Nurture P2 with no enrollment in the active
    sequence: leads that entered the status while no sequence was active, or before the
    trigger existed. One INSERT … SELECT; a lead already active elsewhere is left there."""
    sequence = Sequence.objects.filter(active=True).first()
    first = sequence.steps.order_by("order", "pk").first() if sequence else None
    if sequence is None or first is None:
        return 0
    enrolled = Enrollment.objects.filter(rph=OuterRef("pk"), sequence=sequence)
    return insert_from_select(
        Enrollment,
        {
            "rph": "pk",
            "sequence": Value(sequence.pk),
            "step": Value(first.pk),
            "enrolled_at": Value(as_of, output_field=DateTimeField()),
            "next_due_at": Value(
                as_of + timedelta(days=first.wait_days), output_field=DateTimeField()
            ),
            "status": Value(ACTIVE),
            "stop_reason": Value(""),
            "last_error": Value(""),
        },
        RPH.objects.filter(status=RPH.Status.NURTURE_P2).exclude(Exists(enrolled)),
    )


def claim(as_of: datetime, limit: int, windowed: bool = False) -> list[Enrollment]:
    """Lock up to `limit` enrollments a run may work on now (windows.claimable), skipping any
    another runner holds. Call it inside the transaction that will send them."""
    # Locked on their own table first, in the order of a partial index (a step sent moves its
    # enrollment out of the range, so each batch reads only due rows); joined to what the
    # emails need after. One query with the joins would join every due row and sort them all
    # before the LIMIT.
    ids = list(
        Enrollment.objects.select_for_update(skip_locked=True)
        .filter(windows.claimable(as_of, windowed))
        .order_by("send_after" if windowed else "next_due_at")
        .values_list("pk", flat=True)[:limit]
    )
    return list(
        Enrollment.objects.filter(pk__in=ids)
        .select_related("rph__owner", "rph__contact__account", "step__template", "sequence")
        .order_by("pk")
    )


@dataclass
class Outgoing:
    """A step to send: to whom, its email once rendered, and what the caps count it under."""

    enrollment: Enrollment
    address: str
    email: outbox.Email | None = None
    caps_keys: dict[str, str] = field(default_factory=dict)


def process(
    batch: list[Enrollment],
    as_of: datetime,
    rules: SendSettings | None = None,
    windowing: windows.Windows | None = None,
) -> Counter:
    """Send or close every enrollment of a claimed batch, within the hourly caps of `rules`
    (a step a cap refuses waits: windows.hold). The number of queries depends on the number of
    distinct steps in the batch (and windows of the steps held), not on its size."""
    rules = rules or SendSettings()
    counts: Counter = Counter()
    following = _following_steps({e.sequence_id for e in batch})
    addresses = {e.pk: address_of(e.rph) for e in batch}
    listed = suppressed(a for a in addresses.values() if a)
    done: list[SentStep] = []
    stopped: list[Enrollment] = []
    failed: list[Enrollment] = []
    closing: list[Enrollment] = []
    outgoing: list[Outgoing] = []
    for enrollment in batch:
        step = enrollment.step
        if step is None:
            closing.append(enrollment)
            continue
        address = addresses[enrollment.pk]
        problem = address_problem(address, listed)
        if problem:
            done.append(SentStep(enrollment=enrollment, step=step, skipped=problem, at=as_of))
            _stop(enrollment, problem, as_of)
            stopped.append(enrollment)
            continue
        outgoing.append(Outgoing(enrollment, address))
    capped = caps.Caps(rules, as_of) if rules.capped else None
    ready, held = _render(outgoing, capped, as_of, failed)
    emails = [item.email for item in ready if item.email is not None]
    outbox.queue(emails, as_of)
    moves: dict[int, list[int]] = defaultdict(list)  # step sent → enrollments that sent it
    for item in ready:
        step = item.enrollment.step
        assert step is not None and item.email is not None  # noqa: S101 - composed above
        key = item.email.key
        done.append(SentStep(enrollment=item.enrollment, step=step, outbox_key=key, at=as_of))
        moves[step.pk].append(item.enrollment.pk)
    # A step sent before (steps renumbered after it went out) is not sent or recorded again.
    SentStep.objects.bulk_create(done, ignore_conflicts=True)
    for step_id, ids in moves.items():
        after, wait = following[step_id]
        Enrollment.objects.filter(pk__in=ids).update(
            step=after,
            next_due_at=F("next_due_at") + timedelta(days=wait),
            last_run_at=as_of,
            last_error="",
            send_after=None,  # the next step's window is worked out by the next run
            send_until=None,
        )
    Enrollment.objects.bulk_update(stopped + failed, ENDED_OR_FAILED)
    counts.update(
        sent=len(emails), skipped=len(stopped), failed=len(failed), closed=close(closing, as_of)
    )
    if capped:  # reported only with caps on: without, a run's counts are what they were
        counts["held"] = windows.hold([item.enrollment for item in held], as_of, windowing)
    return counts


def _render(
    outgoing: list[Outgoing], capped: caps.Caps | None, as_of: datetime, failed: list[Enrollment]
) -> tuple[list[Outgoing], list[Outgoing]]:
    """Render the emails (a template that fails goes to `failed`) and, with caps, take what
    they grant: (ready to queue, held back). An email whose domain or sending address is at
    its cap already is not even rendered."""
    held: list[Outgoing] = []
    if capped:
        for item in outgoing:
            item.caps_keys = capped.keys(item.address)
        held = _full(outgoing, capped)
    not_rendered = {id(item) for item in held}
    for item in outgoing:
        if id(item) not in not_rendered:
            item.email = _compose_or_record(item.enrollment, item.address, as_of, failed)
    ready = [item for item in outgoing if item.email is not None]
    if capped:
        ready, refused = capped.split(ready, lambda item: item.caps_keys)
        held += refused
    return ready, held


def _full(outgoing: list[Outgoing], capped: caps.Caps) -> list[Outgoing]:
    """The emails whose domain or sending address is at its cap already: not even rendered."""
    names: dict[str, set[str]] = defaultdict(set)
    for item in outgoing:
        for kind, name in item.caps_keys.items():
            names[kind].add(name)
    full = capped.full(names)
    if not full:
        return []
    return [o for o in outgoing if any(key in full for key in o.caps_keys.items())]


def _compose_or_record(
    enrollment: Enrollment, address: str, as_of: datetime, failed: list[Enrollment]
) -> outbox.Email | None:
    """The step's email, or None with the error recorded on the enrollment (tried again the
    next day; the batch goes on)."""
    try:
        return compose(enrollment, address)
    except Exception as exc:  # noqa: BLE001 - recorded on the enrollment; the batch goes on
        step = enrollment.step
        enrollment.last_error = f"Template “{step.template if step else ''}” failed: {exc}"[:2000]
        enrollment.last_run_at = as_of
        # Its window is worked out again, from the lead's next day.
        enrollment.send_after = enrollment.send_until = None
        failed.append(enrollment)
        log.warning("nurture_send: enrollment %s: %s", enrollment.pk, enrollment.last_error)
        return None


def _following_steps(sequence_ids: set[int]) -> dict[int, tuple[Step | None, int]]:
    """For each step of these sequences: the step after it and the days to wait for it (after
    the last step: none, and the sequence's final wait)."""
    steps = (
        Step.objects.filter(sequence_id__in=sequence_ids)
        .select_related("sequence")
        .order_by("sequence_id", "order", "pk")
    )
    by_sequence: dict[int, list[Step]] = defaultdict(list)
    for step in steps:
        by_sequence[step.sequence_id].append(step)
    following: dict[int, tuple[Step | None, int]] = {}
    for ordered in by_sequence.values():
        for step, after in zip(ordered, [*ordered[1:], None], strict=True):
            wait = after.wait_days if after else step.sequence.final_wait_days
            following[step.pk] = (after, wait)
    return following


def address_of(rph: RPH) -> str:
    return (rph.email or (rph.contact.email if rph.contact else "")).strip()


def address_problem(address: str, listed: dict[str, str]) -> str:
    """Why a step may not go to this address, or ""."""
    if not address:
        return "no email address"
    try:
        validate_email(address)
    except ValidationError:
        return f"“{address}” is not a valid email address"
    reason = listed.get(normalise(address))
    # Kept on the enrollment and its SentStep (500 characters each); a provider's long
    # bounce text must not make the batch's insert fail.
    return f"{address} is suppressed: {reason}"[:500] if reason is not None else ""


def _stop(enrollment: Enrollment, reason: str, as_of: datetime) -> None:
    enrollment.status = Enrollment.Status.STOPPED
    enrollment.stop_reason = reason[:500]
    enrollment.stopped_at = enrollment.last_run_at = as_of
    enrollment.next_due_at = None
    enrollment.last_error = ""
    enrollment.send_after = enrollment.send_until = None


def merge_fields(rph: RPH, address: str) -> dict[str, str]:
    """The values a template sees: plain strings, never the objects they come from."""
    owner = rph.owner
    return {
        "first_name": (rph.name.split() or [""])[0],
        "name": rph.name,
        "company": rph.company,
        "contact_name": rph.contact.name if rph.contact else "",
        "owner_name": str(owner) if owner else "",
        "owner_email": owner.email if owner else "",
        "unsubscribe_url": unsubscribe_url(address) if address else "",
    }


def compose(enrollment: Enrollment, address: str) -> outbox.Email:
    """The email of an enrollment's current step, rendered in the sandbox."""
    step = enrollment.step
    assert step is not None  # noqa: S101 - the caller closes enrollments without a step
    rph = enrollment.rph
    fields = merge_fields(rph, address)
    subject, html, text = render(step.template.subject, step.template.body, fields)
    owner_email = rph.owner.email if rph.owner and rph.owner.email else ""
    return outbox.Email(
        key=outbox_key(enrollment.pk, step.pk),
        source="nurture_send",
        to=[address],
        reply_to=[owner_email] if owner_email else [],
        subject=subject,
        text_body=text,
        html_body=html,
        headers=unsubscribe_headers(address),
        about=rph,
    )


def render(subject: str, body: str, fields: dict[str, str]) -> tuple[str, str, str]:
    """(subject, HTML, text) of a template for these merge fields, with the unsubscribe
    footer. Raises what the sandbox raises."""
    html = sandbox.render(body, fields)
    url = fields["unsubscribe_url"]
    html_footer = format_html(
        '<p style="font-size:small;color:#666">Not interested? '
        '<a href="{}">Unsubscribe</a> and we will not write again.</p>',
        url,
    )
    text_footer = f"Not interested? Unsubscribe and we will not write again: {url}"
    return (
        sandbox.render(subject, fields, autoescape=False),
        f"{html}\n{html_footer}",
        f"{sandbox.text_from_html(html)}\n\n--\n{text_footer}\n",
    )


def close(closing: list[Enrollment], as_of: datetime) -> int:
    """Every step is out and the last wait passed without a reply: the enrollment ends for
    inactivity, the lead is closed, and each owner gets one notice for the run."""
    if not closing:
        return 0
    # The enrollment first: closing the lead fires the trigger, which stops what is active.
    Enrollment.objects.filter(pk__in=[e.pk for e in closing]).update(
        status=Enrollment.Status.CLOSED,
        stop_reason=INACTIVITY,
        stopped_at=as_of,
        next_due_at=None,
        last_run_at=as_of,
        last_error="",
    )
    RPH.objects.filter(pk__in=[e.rph_id for e in closing], status=RPH.Status.NURTURE_P2).update(
        status=RPH.Status.CLOSED, status_changed_at=as_of
    )
    owners = sorted({e.rph.owner_id for e in closing if e.rph.owner_id})
    notify(
        owners,
        source=f"nurture-closed:{as_of.isoformat()}",
        title=f"Nurture P2: leads closed for inactivity on {timezone.localtime(as_of):%d %b %Y}",
        link=closed_link(as_of),
        at=as_of,
    )
    return len(closing)


def closed_link(as_of: datetime) -> str:
    return f"{reverse('nurture:closed')}?{urlencode({'run': as_of.isoformat()})}"
