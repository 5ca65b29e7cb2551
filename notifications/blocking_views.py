"""Setting a blocking notification by hand: a hard deadline of one's own, or a manager's for
a member of their team."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods

from notifications import services
from notifications.forms import BlockingForm


@login_required
@require_http_methods(["GET", "POST"])
def new_blocking(request):
    now = timezone.now()
    form = BlockingForm(request.POST or None, actor=request.user, now=now)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        services.add_blocking(
            request.user, data["target"], data["kind"], data["object_id"], data["resolve_by"], now
        )
        messages.success(request, "Blocking notification set.")
        return redirect("dashboard")
    return render(request, "notifications/blocking_new.html", {"form": form})
