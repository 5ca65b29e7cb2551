from datetime import timedelta

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.db.models import Q
from django.utils import timezone

from crm.dates import within_years
from crm.models import User
from notifications import services
from notifications.models import ObjectKind
from notifications.objects import TYPES


class RefuseLockedUsers:
    """The one lock check of every login form (the site's and the admin's): refuses users
    locked out by an overdue blocking notification and tells them why and who can unlock
    them."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        now = timezone.now()
        if not services.is_locked(user, now):
            return
        overdue = services.overdue_blocking(user, now).order_by("grace_deadline").first()
        when = timezone.localtime(overdue.grace_deadline).strftime("%Y-%m-%d %H:%M %Z")
        who = " or ".join(services.unlockers(user))
        raise forms.ValidationError(
            f"Your account is locked: “{overdue.title}” was not resolved by {when}. "
            f"Ask {who} to unlock it.",
            code="locked",
        )


class LoginForm(RefuseLockedUsers, AuthenticationForm):
    pass


class AdminLoginForm(RefuseLockedUsers, AdminAuthenticationForm):
    """The admin's login form (staff only), with the same lock check as the site's."""


class ReminderForm(forms.Form):
    kind = forms.ChoiceField(choices=[c for c in ObjectKind.choices if c[0] in TYPES])
    object_id = forms.IntegerField(min_value=1)
    remind_at = forms.DateTimeField(
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"], validators=[within_years]
    )
    note = forms.CharField(max_length=500, required=False)


class UnlockForm(forms.Form):
    extend_hours = forms.IntegerField(
        min_value=1,
        max_value=24 * 14,
        initial=24,
        help_text="New time to resolve, from now.",
    )

    @property
    def extension(self) -> timedelta:
        return timedelta(hours=self.cleaned_data["extend_hours"])


class BlockingForm(forms.Form):
    """A blocking notification set by a person: for themselves, or (a manager) for a member
    of their team, or (an administrator) for anyone, about an open object the target owns."""

    target = forms.ModelChoiceField(queryset=User.objects.none(), label="For")
    kind = forms.ChoiceField(choices=[c for c in ObjectKind.choices if c[0] in TYPES])
    object_id = forms.IntegerField(min_value=1, label="Object number")
    resolve_by = forms.DateTimeField(
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"],
        label="Resolve by",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}),
        validators=[within_years],
    )

    def __init__(self, *args, actor: User, now, **kwargs):
        super().__init__(*args, **kwargs)
        self.actor, self.now = actor, now
        self.fields["target"].queryset = self.targets()
        self.fields["target"].initial = actor.pk

    def targets(self):
        active = User.objects.filter(is_active=True).order_by("first_name", "last_name", "pk")
        if self.actor.is_administrator:
            return active
        if self.actor.role == User.Role.MANAGER:
            team = Q(team_id=self.actor.team_id) if self.actor.team_id else Q(pk__in=[])
            return active.filter(team | Q(manager=self.actor) | Q(pk=self.actor.pk))
        return active.filter(pk=self.actor.pk)

    def clean_resolve_by(self):
        resolve_by = self.cleaned_data["resolve_by"]
        if resolve_by <= self.now:
            raise forms.ValidationError("Choose a time in the future.", code="past")
        return resolve_by

    def clean(self):
        data = super().clean()
        target, kind, object_id = data.get("target"), data.get("kind"), data.get("object_id")
        if target is None or kind is None or object_id is None:
            return data
        if not services.may_block(self.actor, target):
            self.add_error("target", "You can only set this for yourself or your team.")
            return data
        object_type = TYPES[kind]
        owned = object_type.open(self.now).filter(pk=object_id, **{object_type.owner: target.pk})
        if not owned.exists():
            who = "you" if target.pk == self.actor.pk else target
            self.add_error(
                "object_id",
                f"No open {object_type.label.lower()} number {object_id} belongs to {who}.",
            )
        return data
