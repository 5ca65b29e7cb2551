"""The signed-in user's own settings: the time zone their pages are shown in, the emails they
choose (a morning digest, overdue-job alerts at once), and their calendar feed (crm/feeds.py)."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.cache import patch_vary_headers
from django.utils.html import format_html_join
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from crm.forms import PreferencesForm, offered_zones
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


@login_required
@require_GET
@cache_control(private=True, max_age=86400)
def time_zone_list(request):
    """The time zones a TimeZoneInput suggests: a <datalist> for htmx, which fetches it when
    the field is first focused; a page listing them for a browser without JavaScript."""
    zones = offered_zones()
    if request.htmx:
        options = format_html_join("", '<option value="{}">', ((zone,) for zone in zones))
        response = HttpResponse(f'<datalist id="time-zones">{options}</datalist>')
    else:
        response = render(request, "crm/time_zones.html", {"zones": zones})
    patch_vary_headers(response, ["HX-Request"])
    return response
