"""Who is away (`/team/away/`): a user records their own leave, sickness or training; a manager
their team's; an administrator anyone's. Everyone sees their team's absences, by the one rule
(crm.visibility, TEAM_PATHS[Absence]); the dashboard names who is away today. An absence
takes whole days in the absent person's time zone; the working-time calendar
(crm.workingtime) leaves them out."""

from datetime import date

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from crm.forms import ModelChoiceField
from crm.leads import OneLineErrors, owners_for
from crm.models import Absence, User
from crm.visibility import visible_to

# The away page lists this many absences, the soonest first.
SHOWN = 200


def recordable_for(user: User) -> QuerySet[User]:
    """Whose absences `user` records: their own (in a team or not); a manager their team's;
    an administrator anyone's (the lead list's owners)."""
    return owners_for(user) | User.objects.filter(pk=user.pk)


def may_remove(user: User, absence: Absence) -> bool:
    """Whoever may record it: the absent person, a manager of their team, an administrator."""
    if user.is_administrator or absence.user_id == user.pk:
        return True
    team = absence.user.team_id
    return user.role == User.Role.MANAGER and team is not None and team == user.team_id


def away(user: User, first: date, last: date) -> QuerySet[Absence]:
    """The absences `user` may see (their team's, their own) that overlap first…last."""
    overlapping = Absence.objects.filter(first_day__lte=last, last_day__gte=first)
    seen = visible_to(user, overlapping) | overlapping.filter(user=user)
    return seen.select_related("user", "delegate").order_by("first_day", "user__first_name", "pk")


def team_away(user: User, day: date) -> QuerySet[Absence]:
    """Who of `user`'s own team (or `user`, in none) is away on `day`: the dashboard's line,
    for an administrator too."""
    mine = Q(user__team_id=user.team_id) if user.team_id else Q(user=user)
    return away(user, day, day).filter(mine)


class AbsenceForm(OneLineErrors, forms.ModelForm):
    user = ModelChoiceField(queryset=User.objects.none(), label="Who", empty_label=None)
    delegate = ModelChoiceField(
        queryset=User.objects.none(), required=False, empty_label="Their manager"
    )

    class Meta:
        model = Absence
        fields = ["user", "kind", "first_day", "last_day", "delegate", "note"]
        widgets = {
            "first_day": forms.DateInput(attrs={"type": "date"}),
            "last_day": forms.DateInput(attrs={"type": "date"}),
        }

    def __init__(self, *args, recorder: User, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = recordable_for(recorder)  # type: ignore[attr-defined]
        self.fields["user"].initial = recorder.pk
        # A delegate stands in for the absent person: someone of the recorder's team (anyone,
        # for an administrator), never the absent person (Absence.clean).
        team = User.objects.filter(is_active=True).order_by("first_name", "last_name", "pk")
        self.fields["delegate"].queryset = visible_to(recorder, team)  # type: ignore[attr-defined]
        self.recorder = recorder

    def clean_first_day(self) -> date:
        first_day = self.cleaned_data["first_day"]
        if not may_backdate(self.recorder, self.cleaned_data.get("user"), first_day):
            raise forms.ValidationError(PAST_DAYS)
        return first_day


PAST_DAYS = "Days already gone are recorded by your manager: start today or later."


def may_backdate(recorder: User, absent: User | None, first_day: date) -> bool:
    """An absence moves its person's blocking deadlines past it: days already gone are for a
    manager of someone else (a sick day told afterwards) or an administrator to record, or
    a person could buy themselves time."""
    if first_day >= timezone.localdate():
        return True
    if recorder.is_administrator:
        return True
    return recorder.role == User.Role.MANAGER and absent is not None and absent != recorder


@login_required
@require_http_methods(["GET", "POST"])
def away_page(request):
    form = AbsenceForm(request.POST or None, recorder=request.user)
    if request.method == "POST" and form.is_valid():
        absence = form.save(commit=False)
        absence.recorded_by = request.user
        absence.save()
        messages.success(request, f"Recorded: {absence}.")
        return redirect("away")
    today = timezone.localdate()
    shown = list(away(request.user, today, date.max)[:SHOWN])
    context = {
        "form": form,
        "absences": [(absence, may_remove(request.user, absence)) for absence in shown],
        "today": today,
        "problems": form.error_lines() if form.is_bound else [],
    }
    return render(request, "crm/away.html", context, status=400 if form.is_bound else 200)


@login_required
@require_POST
def absence_remove(request, pk: int):
    absence = get_object_or_404(away(request.user, date.min, date.max), pk=pk)
    if not may_remove(request.user, absence):
        raise PermissionDenied("Only the absent person, their manager or an administrator.")
    absence.delete()
    messages.success(request, f"Removed: {absence}.")
    return redirect("away")
