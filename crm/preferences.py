"""The signed-in user's own settings: the time zone their pages are shown in, the emails they
choose (a morning digest, overdue-job alerts at once), and their calendar feed (crm/feeds.py)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render

from crm.forms import PreferencesForm
from crm.models import CalendarFeed


@login_required
def preferences(request):
    form = PreferencesForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        user = form.save(commit=False)
        # Only the form's columns: a whole-row save could undo a lock-out's session_epoch, or
        # the digest job's last_digest_on, written between this page's read and its write.
        user.save(update_fields=PreferencesForm.Meta.fields)
        zone = user.time_zone or "the company's time zone"
        messages.success(request, f"Saved: dates and times are now shown in {zone}.")
        return redirect("preferences")
    return settings_page(request, form)


def settings_page(request, form: PreferencesForm | None = None, **extra):
    """The page, with the preferences form and the calendar feed's state (crm/feeds.py)."""
    form = form or PreferencesForm(instance=request.user)
    feed = CalendarFeed.objects.filter(user=request.user).first()
    return render(request, "crm/preferences.html", {"form": form, "feed": feed, **extra})
