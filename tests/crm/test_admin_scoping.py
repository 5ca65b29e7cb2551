"""Every ModelAdmin, walked as a manager of another team who holds every Django permission:
nothing of North Sales is listed, opened, changed, deleted, acted on or offered as a choice to
South Sales' manager. The walk reads the admin's registry, so a model registered later without
a visibility rule fails it."""

from datetime import timedelta
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.forms import CheckboxInput, MultiWidget
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from crm.models import (
    RPH,
    Absence,
    Account,
    CalendarFeed,
    Contact,
    Dispatch,
    Event,
    Holiday,
    JobLock,
    JobRun,
    Opportunity,
    Task,
    Team,
    User,
    WorkingCalendar,
)
from finance.models import Invoice, Payment, PenaltyAccrual, PenaltyPolicy
from mailsync.models import (
    BacklogEmail,
    Mailbox,
    MailboxCopy,
    OutboxMessage,
    Suppression,
    SuppressionLift,
    TrackingEvent,
)
from monitoring.models import BugReport, ErrorEvent
from notifications.models import AlertSettings, AuditEvent, Notification, OverdueAlert, ReminderRule
from nurture.models import EmailTemplate, Enrollment, SendSettings, Sequence
from parc.models import Agreement, ParcSettings
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

# Rows that belong to no team: the company's configuration, schedules, monitoring and the
# suppression list. Django's permissions say who sees them; their admins say so too.
COMPANY_WIDE = {
    Group,
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    SolarSchedule,
    PeriodicTask,
    JobRun,
    JobLock,
    Suppression,
    SuppressionLift,
    TrackingEvent,
    ReminderRule,
    AlertSettings,
    WorkingCalendar,
    Sequence,
    EmailTemplate,
    SendSettings,
    ErrorEvent,
    BugReport,
}


def _mailbox(north):
    return Mailbox.objects.get_or_create(
        owner=north.rep,
        address="rita@north.example",
        defaults=dict(
            provider="imap",
            auth="password",
            username="rita@north.example",
            imap_host="imap.north.example",
            created_at=timezone.now(),
        ),
    )[0]


def _backlog_email(north):
    email = BacklogEmail.objects.create(
        content_key="north-1",
        message_key="contract-1@client.example",
        thread_key="contract-1@client.example",
        subject="Our floor is 41,000 EUR",
        direction="inbound",
        created_at=timezone.now(),
    )
    MailboxCopy.objects.create(
        email=email, mailbox=_mailbox(north), folder="inbox", uidvalidity=1, uid=1
    )
    return email


def _accrual(north):
    return PenaltyAccrual.objects.create(
        invoice=InvoiceFactory(account=north.account),
        start_day=1,
        end_day=2,
        days=1,
        balance_days=Decimal("100"),
        annual_rate=Decimal("10"),
        interest_parts=0,
        fees=Decimal("0"),
        amount_parts=0,
        run_day=2,
    )


def _notification(north):
    now = timezone.now()
    return Notification.objects.create(
        user=north.rep,
        source="rule",
        object_kind="task",
        object_id=1,
        title="Call North's client",
        expires_at=now + timedelta(days=1),
        visible_from=now,
        created_at=now,
    )


def _outbox(north):
    now = timezone.now()
    return OutboxMessage.objects.create(
        key="north-1",
        source="nurture",
        from_email="rita@north.example",
        to=["client@north.example"],
        subject="North's offer",
        text_body="41,000 EUR",
        message_id="<north-1@vigil.example>",
        next_attempt_at=now,
        created_at=now,
    )


# One row of North Sales for each registered model, or COMPANY_WIDE above.
NORTH_ROWS = {
    User: lambda north: north.rep,
    Team: lambda north: north.team,
    Holiday: lambda north: Holiday.objects.create(
        date=timezone.localdate(), name="North's day", team=north.team
    ),
    CalendarFeed: lambda north: CalendarFeed.objects.create(user=north.rep, key_hash="0" * 64),
    Absence: lambda north: Absence.objects.create(
        user=north.rep, first_day=timezone.localdate(), last_day=timezone.localdate()
    ),
    Account: lambda north: north.account,
    Contact: lambda north: Contact.objects.create(account=north.account, name="Nora North"),
    RPH: lambda north: RPH.objects.create(
        name="North lead", owner=north.rep, status_changed_at=timezone.now()
    ),
    Opportunity: lambda north: OpportunityFactory(account=north.account, owner=north.rep),
    Task: lambda north: TaskFactory(owner=north.rep, account=north.account),
    Event: lambda north: EventFactory(owner=north.rep, account=north.account),
    Dispatch: lambda north: DispatchFactory(owner=north.rep, account=north.account),
    OutboxMessage: _outbox,
    Mailbox: _mailbox,
    BacklogEmail: _backlog_email,
    Invoice: lambda north: InvoiceFactory(account=north.account),
    Payment: lambda north: Payment.objects.create(
        invoice=InvoiceFactory(account=north.account),
        paid_on=timezone.localdate(),
        amount=Decimal("10"),
    ),
    PenaltyPolicy: lambda north: PenaltyPolicy.objects.create(name="North", account=north.account),
    PenaltyAccrual: _accrual,
    Notification: _notification,
    AuditEvent: lambda north: AuditEvent.objects.create(
        user=north.rep, action="snoozed", at=timezone.now()
    ),
    OverdueAlert: lambda north: OverdueAlert.objects.create(
        object_kind="task",
        object_id=1,
        due_at=timezone.now(),
        owner=north.rep,
        title="North's task",
        alerted_at=timezone.now(),
    ),
    Agreement: lambda north: Agreement.objects.create(
        account=north.account,
        account_manager=north.manager,
        visiting_team=TeamFactory(name="Inspectors", kind="visiting"),
        plan="FREQ=WEEKLY;BYDAY=TU",
        first_visit=timezone.localdate() + timedelta(days=7),
        notes="North's terms",
    ),
    ParcSettings: lambda north: ParcSettings.objects.get_or_create()[0],
    Enrollment: lambda north: Enrollment.objects.create(
        rph=RPH.objects.create(name="North P2", owner=north.rep, status_changed_at=timezone.now()),
        sequence=Sequence.objects.create(name="P2"),
        enrolled_at=timezone.now(),
    ),
}


@pytest.fixture
def north(db):
    team = TeamFactory(name="North Sales")
    north = SimpleNamespace(
        team=team,
        manager=UserFactory(username="nils_north", role="manager", team=team),
        rep=UserFactory(username="rita_north", role="rep", team=team),
    )
    north.account = AccountFactory(name="North Client", team=team, account_manager=north.manager)
    return north


@pytest.fixture
def manager2(db):
    """South Sales' manager, given every permission Django has: rows must still be scoped."""
    user = UserFactory(
        username="manager2", role="manager", team=TeamFactory(name="South Sales"), is_staff=True
    )
    user.user_permissions.set(Permission.objects.all())
    return User.objects.get(pk=user.pk)  # without the permission cache


def _url(model, view, *args):
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _as(user):
    request = RequestFactory().get("/admin/")
    request.user = user
    return request


def _post_data(form, inline_prefixes=()) -> dict:
    """What a browser would post for `form` as it stands (its initial values)."""
    data = {f"{prefix}-{n}": "0" for prefix in inline_prefixes for n in ("TOTAL_FORMS",)}
    data |= {f"{prefix}-INITIAL_FORMS": "0" for prefix in inline_prefixes}
    for name, field in form.fields.items():
        if field.disabled:
            continue
        bound = form[name]
        widget = getattr(field.widget, "widget", field.widget)
        value = bound.value()
        if isinstance(widget, MultiWidget):
            parts = value if isinstance(value, list) else widget.decompress(value)
            for i, (sub, part) in enumerate(zip(widget.widgets, parts, strict=True)):
                data[f"{bound.html_name}_{i}"] = sub.format_value(part) or ""
        elif isinstance(widget, CheckboxInput):
            if value:
                data[bound.html_name] = "on"
        elif isinstance(value, list | tuple):
            data[bound.html_name] = [str(v) for v in value]
        elif value is not None:
            data[bound.html_name] = widget.format_value(value) or ""
    return data


def _snapshot(row):
    return list(type(row)._base_manager.filter(pk=row.pk).values())


@pytest.mark.parametrize(
    "model", list(admin.site._registry), ids=lambda model: model._meta.label_lower
)
@pytest.mark.django_db
def test_a_manager_of_another_team_finds_nothing_foreign_in_any_admin(
    client, model, north, manager2
):
    model_admin = admin.site._registry[model]
    assert model in NORTH_ROWS or model in COMPANY_WIDE, (
        f"{model._meta.label} is registered in the admin: add a North row for it to NORTH_ROWS "
        "(and a visibility rule to its admin), or list it in COMPANY_WIDE"
    )
    rows = {m: make(north) for m, make in NORTH_ROWS.items()}
    client.force_login(manager2)

    offered = _add_form_choices(client, model)
    for related, queryset in offered:
        foreign = rows.get(related)
        assert foreign is None or not queryset.filter(pk=foreign.pk).exists(), (
            f"the {model._meta.label} add form offers North's {related._meta.label}"
        )
    for name in model_admin.autocomplete_fields:
        related = model._meta.get_field(name).related_model
        found = client.get(
            reverse("admin:autocomplete"),
            {"app_label": model._meta.app_label, "model_name": model._meta.model_name}
            | {"field_name": name, "term": ""},
        )
        ids = {row["id"] for row in found.json()["results"]} if found.status_code == 200 else ()
        assert related not in rows or str(rows[related].pk) not in ids, f"{model}.{name}"
    if model in COMPANY_WIDE:
        assert getattr(model_admin, "company_wide", False), (
            f"{model._meta.label} is company-wide here but its admin does not say so"
        )
        return

    foreign = rows[model]
    before, count = _snapshot(foreign), model._base_manager.count()

    listed = client.get(_url(model, "changelist"))
    assert listed.status_code in (200, 403)
    if listed.status_code == 200:
        assert not listed.context["cl"].queryset.filter(pk=foreign.pk).exists()
    for view in ("change", "history", "delete"):
        assert client.get(_url(model, view, foreign.pk)).status_code in (302, 403, 404), view

    form = model_admin.get_form(_as(manager2), foreign)(instance=foreign)
    prefixes = [
        f.get_default_prefix()
        for f, _ in model_admin.get_formsets_with_inlines(_as(manager2), foreign)
    ]
    changed = _post_data(form, prefixes)
    for name, field in form.fields.items():
        if isinstance(changed.get(name), str) and field.__class__.__name__ == "CharField":
            changed[name] = f"{changed[name]}!"
    client.post(_url(model, "change", foreign.pk), changed)
    client.post(_url(model, "add"), _post_data(form, prefixes))  # a copy, with North's keys
    client.post(_url(model, "delete", foreign.pk), {"post": "yes"})
    for action in model_admin.get_actions(_as(manager2)):
        response = client.post(
            _url(model, "changelist"),
            {"action": action, "_selected_action": [foreign.pk], "post": "yes"}
            | {"apply": "Lift", "why": "because"},
        )
        body = b"".join(response.streaming_content) if response.streaming else response.content
        assert str(foreign).encode() not in body, action

    assert _snapshot(foreign) == before
    assert model._base_manager.count() == count


def _add_form_choices(client, model):
    """(related model, the rows offered) for every choice field of the add page and its
    inlines (not an inline row's own hidden id: Django saves only rows of the parent)."""
    page = client.get(_url(model, "add"))
    if page.status_code != 200:
        return []
    forms = [page.context["adminform"].form]
    forms += [inline.formset.empty_form for inline in page.context["inline_admin_formsets"]]
    return [
        (field.queryset.model, field.queryset)
        for form in forms
        for name, field in form.fields.items()
        if hasattr(field, "queryset") and name != form._meta.model._meta.pk.name
    ]


@pytest.mark.django_db
def test_a_manager_adds_and_changes_only_their_own_teams_agreements(client, north, manager2):
    own = AccountFactory(name="South Client", team=manager2.team, account_manager=manager2)
    mine = NORTH_ROWS[Agreement](SimpleNamespace(account=own, manager=manager2))
    theirs = NORTH_ROWS[Agreement](north)
    client.force_login(manager2)

    listed = client.get(_url(Agreement, "changelist")).context["cl"].queryset
    form = client.get(_url(Agreement, "add")).context["adminform"].form

    assert list(listed) == [mine]
    assert list(form.fields["account"].queryset) == [own]
    assert list(form.fields["account_manager"].queryset) == [manager2]
    assert theirs.visiting_team in form.fields["visiting_team"].queryset


@pytest.mark.parametrize("page", ["admin:parc_schedule", "admin:parc_parcsettings_changelist"])
@pytest.mark.django_db
def test_an_administrator_who_is_not_a_superuser_opens_the_parc_pages(client, page):
    ParcSettings.objects.get_or_create()
    ada = UserFactory(username="ada_admin", role="admin", is_staff=True)
    client.force_login(ada)

    assert client.get(reverse(page)).status_code == 200
    settings = ParcSettings.objects.get()
    assert client.get(_url(ParcSettings, "change", settings.pk)).status_code == 200


@pytest.mark.django_db
def test_a_manager_cannot_make_anyone_of_their_team_an_administrator(client):
    team = TeamFactory(name="South Sales")
    manager = UserFactory(username="sam_south", role="manager", team=team, is_staff=True)
    manager.user_permissions.set(Permission.objects.filter(codename__endswith="_user"))
    colleague = UserFactory(username="sue_south", role="rep", team=team)
    client.force_login(manager)

    for user in (manager, colleague):
        page = client.get(reverse("admin:crm_user_change", args=[user.pk]))
        assert page.status_code == 200
        form = page.context["adminform"].form
        data = {name: form[name].value() or "" for name in form.fields}
        data.update(role="admin", is_superuser="on", is_staff="on", username=user.username)
        data.update(first_name="Changed")  # a valid POST: what they may change is saved
        joined = timezone.localtime(user.date_joined)
        data.update(date_joined_0=f"{joined:%Y-%m-%d}", date_joined_1=f"{joined:%H:%M:%S}")
        saved = client.post(reverse("admin:crm_user_change", args=[user.pk]), data)
        assert saved.status_code == 302, saved.context["adminform"].form.errors
        user.refresh_from_db()
        assert user.first_name == "Changed"
        assert not user.is_superuser and user.role != "admin" and not user.is_administrator


@pytest.mark.django_db
@pytest.mark.parametrize(
    "model", [Account, Dispatch, User, Agreement], ids=lambda model: model.__name__
)
def test_a_team_filter_names_no_other_team(client, model):
    north = TeamFactory(name="Northern Secret Sales")
    AccountFactory(team=north)
    DispatchFactory(team=north)
    UserFactory(username="nils_north", team=north)
    south = TeamFactory(name="South Sales")
    manager = UserFactory(username="sam_south", role="manager", team=south, is_staff=True)
    manager.user_permissions.set(Permission.objects.filter(codename__startswith="view_"))
    AccountFactory(team=south)
    client.force_login(manager)

    page = client.get(reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist"))

    assert page.status_code == 200
    assert "Northern Secret" not in page.content.decode()
