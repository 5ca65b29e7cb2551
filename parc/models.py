"""PARC agreements: service contracts under which a visiting team inspects a client's site on a
recurring plan, and the visits the weekly run generates from them."""

import re
from datetime import date, time, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from crm.models import Account, Dispatch, Opportunity, Task, Team, User
from parc.plans import PlanError, parse_plan

NOT_NEGATIVE = "Must be zero or more days."
# A plan with COUNT is counted from its first visit on every run: a first visit in year 1
# would make each run walk two thousand years of days.
EARLIEST_FIRST_VISIT = date(2000, 1, 1)

# An opportunity-name pattern is text with two placeholders; {{ and }} are braces. Nothing else
# in braces: str.format would read `{account:😀>250000000}` as a gigabyte of padding.
PLACEHOLDERS = re.compile(r"\{account\}|\{date\}|\{\{|\}\}")
NAME_REFUSED = "Use only {account} and {date} as placeholders; {{ and }} for braces."


def name_pattern_is_valid(pattern: str) -> bool:
    rest = PLACEHOLDERS.sub("", pattern)
    return "{" not in rest and "}" not in rest


def opportunity_name(pattern: str, account: str, day: date) -> str:
    """The pattern filled in by plain substitution, in one pass: a brace that is not a
    placeholder (in a row that skipped the check) stays text."""
    values = {"{account}": account, "{date}": day.isoformat(), "{{": "{", "}}": "}"}
    return PLACEHOLDERS.sub(lambda match: values[match.group()], pattern)


class ParcSettings(models.Model):
    """One row: how far ahead the weekly run generates visits."""

    horizon_days = models.PositiveSmallIntegerField(
        default=7,
        validators=[MaxValueValidator(366)],
        help_text="Each run generates the visits due from now up to this many days ahead.",
    )

    class Meta:
        verbose_name = verbose_name_plural = "PARC settings"

    def __str__(self) -> str:
        return f"PARC: generate {self.horizon_days} days ahead"

    @classmethod
    def current(cls) -> "ParcSettings":
        return cls.objects.get_or_create(pk=1)[0]


class Agreement(models.Model):
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="parc_agreements")
    account_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="parc_agreements",
        help_text="Owns the opportunity and tasks of each visit. Empty: the account's manager.",
    )
    visiting_team = models.ForeignKey(
        Team,
        blank=True,  # required, with clean()'s own message
        on_delete=models.PROTECT,
        help_text="The team that makes the visits (a visiting team).",
    )
    plan = models.CharField(
        max_length=500,
        help_text="When visits happen, as an iCalendar recurrence rule (RFC 5545), e.g. "
        "FREQ=WEEKLY;INTERVAL=2;BYDAY=TU (every 2 weeks on Tuesday), "
        "FREQ=MONTHLY;BYDAY=1MO (first Monday of each month), FREQ=MONTHLY;INTERVAL=3 "
        "(quarterly). Counted from the first visit date.",
    )
    first_visit = models.DateField(help_text="The first visit; the plan counts from it.")
    end_date = models.DateField(
        null=True, blank=True, help_text="No visit after this day. Empty: no end."
    )
    visit_time = models.TimeField(default=time(9, 0), help_text="Company time zone.")
    visit_duration = models.DurationField(
        default=timedelta(hours=2), help_text="The dispatch is due this long after it starts."
    )
    inspection_offset_days = models.IntegerField(
        default=0,
        validators=[MinValueValidator(0, NOT_NEGATIVE)],
        help_text="The inspection task is due this many days after the visit (0: at it).",
    )
    follow_up_working_days = models.IntegerField(
        default=5,
        validators=[MinValueValidator(0, NOT_NEGATIVE)],
        help_text="The follow-up task is due this many working days (Mon–Fri) after the visit.",
    )
    opportunity_amount = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        default=Decimal("0.00"),
        validators=[MinValueValidator(Decimal("0"), "Must not be negative.")],
    )
    opportunity_name = models.CharField(
        max_length=200,
        default="PARC visit {account} {date}",
        help_text="Name of each visit's opportunity; {account} and {date} are filled in. "
        "No other braces: write {{ and }} for { and }.",
    )
    active = models.BooleanField(default=True, help_text="Inactive: no more visits.")
    notes = models.TextField(blank=True)

    class Meta:
        indexes = [models.Index(fields=["active"])]

    def __str__(self) -> str:
        return f"PARC {self.account} ({self.plan})"

    @property
    def manager(self) -> User | None:
        return self.account_manager or self.account.account_manager

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.first_visit and self.first_visit < EARLIEST_FIRST_VISIT:
            errors["first_visit"] = (
                f"The first visit is on or after {EARLIEST_FIRST_VISIT:%d %b %Y}."
            )
        if self.end_date and self.first_visit and self.end_date < self.first_visit:
            errors["end_date"] = "The end date is before the first visit."
        if self.visiting_team_id is None:
            errors["visiting_team"] = "Choose the visiting team that makes the visits."
        elif self.visiting_team.kind != Team.Kind.VISITING:
            errors["visiting_team"] = f"{self.visiting_team} is not a visiting team."
        if self.account_manager_id is None and self.account_id and not self.account.account_manager:
            errors["account_manager"] = "The account has no manager: choose one."
        manager = self.manager if self.account_id or self.account_manager_id else None
        if manager is not None and manager.role not in (User.Role.MANAGER, User.Role.ADMIN):
            field = "account_manager" if self.account_manager_id else "account"
            errors[field] = f"{manager} is not a manager."
        if self.plan and self.first_visit and "first_visit" not in errors:
            try:
                parse_plan(self.plan, self.first_visit, self.visit_time or time())
            except PlanError as exc:
                errors["plan"] = str(exc)
        if self.opportunity_name and not name_pattern_is_valid(self.opportunity_name):
            errors["opportunity_name"] = NAME_REFUSED
        if errors:
            raise ValidationError(errors)


class ParcVisit(models.Model):
    """One visit of an agreement, and the four records the run made for it. Unique per
    (agreement, date): however often or concurrently the run goes, a visit is made once."""

    agreement = models.ForeignKey(Agreement, on_delete=models.CASCADE, related_name="visits")
    visit_date = models.DateField()
    late = models.BooleanField(
        default=False, help_text="Generated after its date had passed (the system was down)."
    )
    generated_at = models.DateTimeField(help_text="The as_of of the run that made it.")
    manager = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The account manager who got its records.",
    )
    summarized_at = models.DateTimeField(
        null=True, blank=True, help_text="When its account manager's summary was queued."
    )
    summary = models.CharField(
        max_length=32,
        blank=True,
        db_index=True,
        help_text="Which summary told its account manager about it: the visits of one "
        "summary share this key, and each visit is in exactly one.",
    )
    opportunity = models.OneToOneField(
        Opportunity, null=True, blank=True, on_delete=models.SET_NULL, related_name="parc_visit"
    )
    inspection = models.OneToOneField(
        Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="parc_inspection"
    )
    follow_up = models.OneToOneField(
        Task, null=True, blank=True, on_delete=models.SET_NULL, related_name="parc_follow_up"
    )
    dispatch = models.OneToOneField(
        Dispatch, null=True, blank=True, on_delete=models.SET_NULL, related_name="parc_visit"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["agreement", "visit_date"], name="parc_visit_once")
        ]
        indexes = [
            models.Index(
                fields=["manager"], condition=models.Q(summarized_at=None), name="parc_unsummarized"
            )
        ]

    def __str__(self) -> str:
        return f"{self.agreement.account} visit {self.visit_date}"
