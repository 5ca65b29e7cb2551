"""Every app URL, walked as a rep and as a manager of another team, with another team's records
in every place a URL takes an id: nothing of theirs is listed, shown or changed. A URL added
later with an id it has no record for here fails the walk until one is given."""

import uuid
from email.message import EmailMessage

import pytest
from django.conf import settings
from django.forms.models import model_to_dict
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from crm.models import RPH, Absence, Contact
from mailsync import backlog, outbox
from mailsync.models import BacklogEmail, EmailAddress, Mailbox, MailboxCopy
from notifications.models import Notification
from parc.models import Agreement
from tests.clients import logged_in
from tests.factories import (
    AccountFactory,
    DispatchFactory,
    EventFactory,
    InvoiceFactory,
    OpportunityFactory,
    TaskFactory,
    TeamFactory,
    UserFactory,
)

SECRET = "NORTHSECRET"


def app_urls():
    """(route, name) of every URL outside the admin and static files."""

    def walk(patterns, prefix):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                if not str(entry.pattern).startswith(("admin", "static")):
                    yield from walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                yield prefix + str(entry.pattern)

    return list(walk(get_resolver().url_patterns, ""))


@pytest.fixture
def north(db):
    team = TeamFactory(name="North")
    rep = UserFactory(username="nora_north", role="rep", team=team, first_name=SECRET)
    manager = UserFactory(username="ned_north", role="manager", team=team)
    account = AccountFactory(name=f"{SECRET} Acme", team=team, account_manager=manager)
    contact = Contact.objects.create(
        account=account, name=f"{SECRET} Carla", email="carla@north.example"
    )
    rph = RPH.objects.create(
        name=f"{SECRET} Lead",
        email="lead@north.example",
        owner=rep,
        status_changed_at=timezone.now(),
    )
    now = timezone.now()
    mailbox = Mailbox.objects.create(
        owner=rep,
        provider="imap",
        auth="password",
        address="nora@north.example",
        username="nora",
        imap_host="imap.north.example",
        status="active",
        created_at=now,
    )
    email = BacklogEmail.objects.create(
        content_key=f"content:{uuid.uuid4().hex}",
        message_key="m1@north.example",
        thread_key="m1@north.example",
        from_address="carla@north.example",
        to=["lead@north.example"],
        subject=f"{SECRET} floor",
        text_body=f"{SECRET} 41,000 EUR",
        direction="inbound",
        created_at=now,
        date=now,
    )
    MailboxCopy.objects.create(email=email, mailbox=mailbox, folder="inbox", uidvalidity=1, uid=1)
    for address in ("carla@north.example", "lead@north.example"):
        EmailAddress.objects.create(email=email, address=address, role="to")
    # Mail that says it is ours by the domain of its Message-ID, and mail the CRM sent about
    # North's lead.
    domain_said = EmailMessage()
    domain_said["From"], domain_said["To"] = "carla@north.example", "nora@north.example"
    domain_said["Subject"], domain_said["Message-ID"] = SECRET, f"<x@{settings.VIGIL_MAIL_DOMAIN}>"
    domain_said.set_content(SECRET)
    backlog.store(mailbox, "inbox", 1, [backlog.Fetched(2, domain_said.as_bytes())], now)
    outbox.queue(
        [
            outbox.Email(
                key="about-north",
                to=[rph.email],
                subject=SECRET,
                text_body=SECRET,
                source="test",
                about=rph,
            )
        ],
        now,
    )
    outbox.deliver(outbox.claim(now, 10), now)
    records = {
        "account": account,
        "contact": contact,
        "rph": rph,
        "task": TaskFactory(owner=rep, title=f"{SECRET} call"),
        "opportunity": OpportunityFactory(owner=rep, account=account, name=f"{SECRET} deal"),
        "event": EventFactory(owner=rep, title=f"{SECRET} meeting"),
        "dispatch": DispatchFactory(owner=rep, team=team, account=account, title=f"{SECRET} visit"),
        "invoice": InvoiceFactory(account=account, number=f"{SECRET}-1"),
        "notification": Notification.objects.create(
            user=rep,
            source="user",
            object_kind="task",
            object_id=1,
            title=f"{SECRET} note",
            expires_at=now,
            visible_from=now,
            created_at=now,
        ),
        "mailbox": mailbox,
        "email": email,
        "domain_email": BacklogEmail.objects.get(message_key__startswith="x@"),
        "crm_email": BacklogEmail.objects.get(outbox__key="about-north"),
        "user": rep,
        "agreement": Agreement.objects.create(
            account=account,
            visiting_team=TeamFactory(name="Inspectors N", kind="visiting"),
            plan="FREQ=WEEKLY;BYDAY=TU",
            first_visit=now.date(),
            opportunity_amount=1,
        ),
        "absence": Absence.objects.create(
            user=rep, first_day=now.date(), last_day=now.date(), note=f"{SECRET} leave"
        ),
    }
    return records


# Which record each URL with an id is given: another team's.
RECORD_OF = {
    "tasks/<int:pk>/": "task",
    "tasks/<int:pk>/complete": "task",
    "opportunities/<int:pk>/": "opportunity",
    "opportunities/<int:pk>/update": "opportunity",
    "events/<int:pk>/": "event",
    "dispatches/<int:pk>/": "dispatch",
    "invoices/<int:pk>/": "invoice",
    "notifications/<int:pk>/dismiss": "notification",
    "notifications/<int:pk>/snooze": "notification",
    "users/<int:pk>/unlock": "user",
    "parc/accounts/<int:pk>/": "account",
    "rph/<int:pk>/": "rph",
    "rph/<int:pk>/reply": "rph",
    "rph/<int:pk>/edit": "rph",
    "rph/<int:pk>/status": "rph",
    "leads/<int:pk>/convert": "rph",
    "mail/mailboxes/<int:pk>/connect": "mailbox",
    "mail/mailboxes/<int:pk>/remove": "mailbox",
    "mail/emails/<int:pk>/": ("email", "domain_email", "crm_email"),
    "mail/emails/<int:pk>/link": ("email", "domain_email", "crm_email"),
    "accounts/<int:pk>/emails/": "account",
    "contacts/<int:pk>/emails/": "contact",
    "rph/<int:pk>/emails/": "rph",
    # The CRM pages (#19).
    "contacts/<int:pk>/": "contact",
    "contacts/<int:pk>/edit": "contact",
    "contacts/<int:pk>/status": "contact",
    "contacts/<int:pk>/lift": "contact",
    "accounts/<int:pk>/": "account",
    "accounts/<int:pk>/edit": "account",
    "opportunities/<int:pk>/edit": "opportunity",
    "tasks/<int:pk>/edit": "task",
    "events/<int:pk>/edit": "event",
    "invoices/<int:pk>/payments": "invoice",
    # Working time (#20).
    "team/away/<int:pk>/remove": "absence",
}
# Form fields a POST may carry, each pointing at another team's record where it takes one.
POSTED = {
    "stage": "won",
    "days": "1",
    "title": "changed",
    "note": "changed",
    "reason": "changed",
    "password": "changed",
    "address": "changed@south.example",
    "to": "closed",
    "name": "changed",
    "account_name": "changed",
    "opportunity_name": "changed",
    "amount": "1",
    "expected_close": "2030-01-01",
    "status": "rejected",
    "paid_on": "2030-01-01",
    "due_at": "2030-01-01T10:00",
    "start_at": "2030-01-01T10:00",
    "end_at": "2030-01-01T11:00",
    "email": "changed@south.example",
    "q": "NORTH",
}


def snapshot(records):
    return {
        name: model_to_dict(type(obj).objects.get(pk=obj.pk))
        if type(obj).objects.filter(pk=obj.pk).exists()
        else None
        for name, obj in records.items()
    } | {
        "notifications": sorted(
            Notification.objects.filter(user__team__name="North").values_list(
                "pk", "status", "blocking"
            )
        ),
    }


def paths_of(route, records):
    if "<str:token>" in route:
        return ["/" + route.replace("<str:token>", "not-a-token")]
    if "<int:pk>" not in route:
        return ["/" + route]
    assert route in RECORD_OF, f"{route} takes an id: give it another team's record in RECORD_OF"
    names = RECORD_OF[route]
    return [
        "/" + route.replace("<int:pk>", str(records[name].pk))
        for name in ((names,) if isinstance(names, str) else names)
    ]


@pytest.mark.parametrize("role", ["rep", "manager"])
def test_every_app_url_shows_and_changes_nothing_of_another_team(north, role):
    stranger = UserFactory(username=f"sam_south_{role}", role=role, team=TeamFactory(name="South"))
    records = north
    fields = {
        **POSTED,
        "user": records["user"].pk,
        "object_id": records["task"].pk,
        "account": records["account"].pk,
        "contact": records["contact"].pk,
        "opportunity": records["opportunity"].pk,
        "owner": records["user"].pk,
    }
    before = snapshot(records)
    walked = 0
    for route in app_urls():
        if route in ("logout/",):
            continue  # it ends the session it is walked with, and shows nothing
        for path in paths_of(route, records):
            for method in ("get", "post"):
                response = getattr(logged_in(stranger), method)(path, fields)
                raw = (
                    b"".join(response.streaming_content) if response.streaming else response.content
                )
                body = raw.decode(errors="replace")
                assert SECRET not in body, f"{method.upper()} {path} shows another team's record"
                assert SECRET not in response.get("Location", ""), path
                walked += 1
    assert snapshot(records) == before
    assert walked >= 2 * (len(RECORD_OF) + 10)
