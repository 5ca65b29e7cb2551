from datetime import date, timedelta
from decimal import Decimal, localcontext

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Case, F, Q, Value, When
from django.db.models.functions import Coalesce
from django.utils import timezone

from crm.models import NotDumped, copied_team
from crm.sql import AddDays, DayNumber
from finance.currencies import (
    MAX_MINOR_UNIT,
    company_currency,
    minor_unit,
    validate_currency,
    validate_minor_unit,
)

ZERO = Decimal(0)
# Owed (a debt) before paid off or in credit: the invoice list's first sort key.
OWED_FIRST = Case(
    When(debt__gt=0, then=Value(0)), default=Value(1), output_field=models.IntegerField()
)
EPOCH = date(1970, 1, 1)
# Penalties are kept exactly, as whole numbers of parts: one part is one minor unit of the
# invoice's currency (a cent, a yen, a fils) for one day at 0.0001 % a year, 1/365,000,000 of
# the minor unit. A sum of parts is exact however the days are split into ledger rows; money is
# rounded once, from the total, to the minor unit.
PARTS_PER_MINOR = 365_000_000
# Amounts keep the decimals of the currency with the most (CLF, 4), 12 digits before them.
MONEY_DIGITS = 12 + MAX_MINOR_UNIT
# The latest voucher date: plus the longest terms (32,767 days), its due date is still a date.
LAST_VOUCHER = date(9899, 12, 31)


class Invoice(models.Model):
    account = models.ForeignKey("crm.Account", on_delete=models.PROTECT, related_name="invoices")
    number = models.CharField(max_length=40, unique=True)
    voucher_date = models.DateField(help_text="When the voucher was created; terms run from it.")
    payment_terms_days = models.PositiveSmallIntegerField(
        default=30, help_text="Days after the voucher date that payment is due."
    )
    currency = models.CharField(
        max_length=3,
        default=company_currency,
        validators=[validate_currency],
        help_text="ISO 4217 code (EUR, JPY, KWD) of the amount, its payments and its penalty; "
        "each is a whole number of the currency's minor unit. New invoices: the company's.",
    )
    amount = models.DecimalField(
        max_digits=MONEY_DIGITS,
        decimal_places=MAX_MINOR_UNIT,
        help_text="Negative for a credit note, which bears no interest.",
    )
    debt = models.DecimalField(
        max_digits=MONEY_DIGITS,
        decimal_places=MAX_MINOR_UNIT,
        help_text="Outstanding balance still owed; negative when overpaid (a credit to the "
        "client).",
    )
    due_date = models.GeneratedField(
        expression=AddDays(F("voucher_date"), F("payment_terms_days")),
        output_field=models.DateField(),
        db_persist=True,
        help_text="Voucher date plus payment terms; kept by the database.",
    )
    due_day = models.GeneratedField(
        expression=DayNumber(F("voucher_date")) + F("payment_terms_days"),
        output_field=models.IntegerField(),
        db_persist=True,
        help_text="The due date as a day number, for the penalty job's arithmetic.",
    )
    # Kept by the finance_penalties job.
    days_overdue = models.PositiveIntegerField(db_default=0)
    penalty_parts = models.DecimalField(
        max_digits=32,  # whole numbers: numeric(32,0)
        decimal_places=0,
        db_default=ZERO,
        help_text="Penalty owed, exactly, in parts of 1/365,000,000 of the minor unit: the sum "
        "of the ledger.",
    )
    penalty = models.DecimalField(
        max_digits=MONEY_DIGITS,
        decimal_places=MAX_MINOR_UNIT,
        db_default=ZERO,
        help_text="Penalty owed: the exact ledger total rounded half-up to the currency's minor "
        "unit (the one rounding point).",
    )
    penalty_through_day = models.IntegerField(
        null=True, blank=True, help_text="Last day (day number) the penalty was accrued for."
    )
    penalty_computed_at = models.DateTimeField(null=True, blank=True)
    penalty_open = models.BooleanField(
        default=True,
        db_default=True,
        help_text="The penalty job still has days to look at. Off once the invoice is paid off "
        "(or is a credit) and its penalty is final; on again while there is a debt, and when a "
        "payment is recorded.",
    )
    penalty_error = models.CharField(
        max_length=500,
        blank=True,
        default="",
        db_default="",
        help_text="Why the last penalty run could not compute this invoice (it was skipped; "
        "the next run tries again). Empty when all is well.",
    )
    total_due = models.GeneratedField(
        expression=F("debt") + F("penalty"),
        output_field=models.DecimalField(max_digits=17, decimal_places=MAX_MINOR_UNIT),
        db_persist=True,
    )
    # A team's invoice list and the aging rollup read it from this row.
    team = copied_team()

    class Meta:
        indexes = [
            models.Index(fields=["due_date"], condition=Q(debt__gt=0), name="invoice_unpaid_due"),
            models.Index(fields=["account", "voucher_date"]),
            models.Index(fields=["days_overdue"], condition=Q(debt__gt=0), name="invoice_overdue"),
            # The invoice list's order (finance/invoice_list.py ORDER): what is owed first, by
            # due date; a page is read from here, not sorted out of the whole table.
            models.Index(OWED_FIRST, "due_date", "id", name="invoice_list_order"),
            # The same within a team, and a team's owed invoices by due date (the buckets).
            models.Index(F("team"), OWED_FIRST, "due_date", "id", name="invoice_team_list_order"),
            models.Index(
                fields=["team", "due_date"], condition=Q(debt__gt=0), name="invoice_team_unpaid_due"
            ),
            # What the penalty job still has to do: a run finds "nothing" here, not in a scan.
            # A credit (a negative debt) owes nothing: it leaves once its penalty is final.
            models.Index(
                fields=["penalty_through_day", "id"],
                condition=Q(penalty_open=True) | Q(debt__gt=0),
                name="invoice_penalty_due",
            ),
        ]

    def __str__(self) -> str:
        return self.number

    def clean(self) -> None:
        errors = {}
        for field in ("amount", "debt"):
            try:
                validate_minor_unit(getattr(self, field), self.currency)
            except ValidationError as error:
                errors[field] = error
        if isinstance(self.voucher_date, date) and self.voucher_date > LAST_VOUCHER:
            errors["voucher_date"] = ValidationError(
                f"A voucher date is at the latest {LAST_VOUCHER}.", code="too_late"
            )
        if errors:
            raise ValidationError(errors)

    @property
    def penalty_accrued(self) -> Decimal:
        """The penalty before its rounding, for display: exact to 12 decimal places."""
        return parts_to_money(self.penalty_parts, self.currency)


def parts_to_money(parts: Decimal, currency: str) -> Decimal:
    with localcontext(prec=60):
        unit = PARTS_PER_MINOR * 10 ** minor_unit(currency)
        return (Decimal(parts) / unit).quantize(Decimal("1e-12"))


class Payment(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="payments")
    paid_on = models.DateField()
    amount = models.DecimalField(
        max_digits=MONEY_DIGITS,
        decimal_places=MAX_MINOR_UNIT,
        help_text="In the invoice's currency. Negative for a refund paid back.",
    )
    paid_day = models.GeneratedField(
        expression=DayNumber(F("paid_on")), output_field=models.IntegerField(), db_persist=True
    )
    recorded_at = models.DateTimeField(
        default=timezone.now,
        help_text="When it was entered; a payment recorded after the penalty was computed "
        "for its date makes the next run correct the days after it.",
    )

    class Meta:
        indexes = [
            models.Index(fields=["invoice", "paid_on"]),
            models.Index(fields=["recorded_at"], name="payment_recorded"),
        ]

    def __str__(self) -> str:
        return f"{self.amount} on {self.paid_on}"

    def save(self, *args, **kwargs) -> None:
        super().save(*args, **kwargs)
        # A payment changes the balance of its day and of every day before it, even when the
        # debt nets to what it was (a refund and a payment): the penalty job looks again.
        Invoice.objects.filter(pk=self.invoice_id, penalty_open=False).update(penalty_open=True)

    def clean(self) -> None:
        if self.invoice_id is not None:  # a new invoice's payments: its admin formset checks
            try:
                validate_minor_unit(self.amount, self.invoice.currency)
            except ValidationError as error:
                raise ValidationError({"amount": error}) from None


def percent(label: str) -> list:
    return [
        MinValueValidator(ZERO, f"{label} cannot be negative."),
        MaxValueValidator(Decimal(100), f"{label} cannot be more than 100 %%."),
    ]


class PenaltyPolicy(models.Model):
    """How late payment is charged: the default policy (no account), or one account's."""

    name = models.CharField(max_length=100)
    account = models.OneToOneField(
        "crm.Account",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="penalty_policy",
        help_text="Empty: the default policy for everyone else.",
    )
    grace_days = models.PositiveSmallIntegerField(
        default=0, help_text="Days after the due date before any penalty starts."
    )
    annual_rate = models.DecimalField(
        max_digits=7,
        decimal_places=4,
        default=ZERO,
        validators=percent("The annual rate"),
        help_text="Simple interest, % a year, charged daily at rate/365 on the outstanding debt "
        "(a leap year therefore charges 366/365 of the rate).",
    )
    fixed_fee = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        default=ZERO,
        validators=[MinValueValidator(ZERO, "The fixed fee cannot be negative.")],
        help_text="Charged once for every full fee period overdue, in the invoice's currency.",
    )
    fee_period_days = models.PositiveSmallIntegerField(
        default=30, validators=[MinValueValidator(1, "A fee period lasts at least one day.")]
    )
    cap_amount = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(ZERO, "The cap cannot be negative.")],
        help_text="Most an invoice's penalty can reach, in its currency. Empty: no cap.",
    )
    cap_percent = models.DecimalField(
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=percent("The cap"),
        help_text="Most an invoice's penalty can reach, as % of the invoice. With both caps, "
        "the lower applies.",
    )
    payment_day_bears_interest = models.BooleanField(
        default=True,
        db_default=True,
        help_text="On: a paid amount still bears interest on the day it is paid, as ERPNext's "
        "Dunning and statutory late-payment practice count (days = payment date - due date): "
        "£400 of £1,000 at 13.25 % paid on day 10 gives 7.99 after 30 days. Off: interest on "
        "it stops on the payment day itself (7.84).",
    )

    class Meta:
        verbose_name_plural = "penalty policies"
        constraints = [
            models.UniqueConstraint(
                Coalesce("account", Value(0)),
                name="one_penalty_policy_per_account",
                violation_error_message="There is already a policy for this account (or, "
                "with no account, a default policy): edit that one instead.",
            ),
            models.CheckConstraint(
                condition=Q(annual_rate__gte=0, annual_rate__lte=100), name="policy_rate_0_100"
            ),
            models.CheckConstraint(condition=Q(fixed_fee__gte=0), name="policy_fee_positive"),
            models.CheckConstraint(condition=Q(fee_period_days__gte=1), name="policy_period_1"),
            models.CheckConstraint(
                condition=Q(cap_amount__isnull=True) | Q(cap_amount__gte=0),
                name="policy_cap_positive",
            ),
            models.CheckConstraint(
                condition=Q(cap_percent__isnull=True) | Q(cap_percent__gte=0, cap_percent__lte=100),
                name="policy_cap_percent_0_100",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PenaltyAccrual(models.Model):
    """The penalty ledger: one row per invoice per run, covering the days since the last
    accrual. Unique per (invoice, last day), so re-running a day adds nothing."""

    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="accruals")
    start_day = models.IntegerField()
    end_day = models.IntegerField()
    days = models.PositiveIntegerField()
    balance_days = models.DecimalField(
        max_digits=26,
        decimal_places=MAX_MINOR_UNIT,
        help_text="Sum over the days of the balance bearing interest: the outstanding debt, "
        "never more than the invoice nor less than zero.",
    )
    annual_rate = models.DecimalField(max_digits=7, decimal_places=4)
    interest_parts = models.DecimalField(
        max_digits=32,  # whole numbers: numeric(32,0)
        decimal_places=0,
        help_text="Interest, exactly, in parts of 1/365,000,000 of the minor unit: "
        "balance-days in minor units x the rate in 0.0001 %.",
    )
    fees = models.DecimalField(max_digits=14, decimal_places=2)
    amount_parts = models.DecimalField(
        max_digits=32,  # whole numbers: numeric(32,0)
        decimal_places=0,
        help_text="Interest plus fees, after the cap, exactly, in parts.",
    )
    run_day = models.IntegerField(help_text="The as-of day of the run that wrote it.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["invoice", "end_day"], name="accrual_once_per_day")
        ]

    @property
    def interest(self) -> Decimal:
        return parts_to_money(self.interest_parts, self.invoice.currency)

    @property
    def amount(self) -> Decimal:
        return parts_to_money(self.amount_parts, self.invoice.currency)

    @property
    def period_start(self):
        return EPOCH + timedelta(days=self.start_day)

    @property
    def period_end(self):
        return EPOCH + timedelta(days=self.end_day)


class AgingDay(models.Model):
    """Changes to the invoices still owed that fall due on one day, per team of their account,
    currency, sign of their penalty and whether the penalty run failed on them: how many, their
    debt and their penalty. Added up per key, the rows give what is owed. Written by the
    database as invoices change (finance/triggers.py), folded after the nightly penalty run;
    the invoice list's aging table adds them up instead of every past-due invoice."""

    team_key = models.BigIntegerField(help_text="The account's team; 0 for none.")
    currency = models.CharField(max_length=3)
    due_date = models.DateField()
    penalty_sign = models.SmallIntegerField(help_text="1: a penalty; 0: none; -1: below zero.")
    failed = models.BooleanField(help_text="The penalty run could not compute these.")
    invoices = models.BigIntegerField()
    debt = models.DecimalField(max_digits=MONEY_DIGITS + 10, decimal_places=MAX_MINOR_UNIT)
    penalty = models.DecimalField(max_digits=MONEY_DIGITS + 10, decimal_places=MAX_MINOR_UNIT)

    dumped = NotDumped()
    objects = models.Manager()

    class Meta:
        default_manager_name = "dumped"
        indexes = [models.Index(fields=["team_key", "due_date"], name="agingday_team_due")]

    def __str__(self) -> str:
        return f"{self.team_key} {self.currency} {self.due_date}: {self.invoices}"
