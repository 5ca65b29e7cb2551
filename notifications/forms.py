from datetime import timedelta

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.utils import timezone

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
    remind_at = forms.DateTimeField(input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"])
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
