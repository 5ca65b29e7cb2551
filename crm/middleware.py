"""Every page in the signed-in user's own time zone (User.time_zone), else the company's."""

import logging
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.utils import timezone

logger = logging.getLogger(__name__)


class UserTimeZone:
    """After AuthenticationMiddleware; the user row is loaded for the blocking gate anyway, so
    this costs no query."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        zone = _zone_of(request.user)
        if zone:
            timezone.activate(zone)
        else:
            timezone.deactivate()
        try:
            return self.get_response(request)
        finally:
            # The active zone belongs to the thread: the next request served by this thread
            # (or the test that made this one) must not inherit it.
            timezone.deactivate()


def _zone_of(user) -> ZoneInfo | None:
    if not (user.is_authenticated and user.time_zone):
        return None
    try:
        return ZoneInfo(user.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        # A zone removed from the tz database, or a value written around the form: the page
        # still works, in the company zone.
        logger.warning("User %s has an unknown time zone %r", user.pk, user.time_zone)
        return None
