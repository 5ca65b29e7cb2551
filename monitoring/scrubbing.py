"""Secrets out of everything the bug detector stores, by Django's own rules
(SafeExceptionReporterFilter): a setting, header, cookie or parameter whose name says API, AUTH,
TOKEN, KEY, SECRET, PASS, SIGNATURE or HTTP_COOKIE is secret, and so are the session cookie and
the POST parameters a view marked with @sensitive_post_parameters.

Names are not enough: a secret's value can turn up in an exception message or a traceback
("invalid token abc123"). So the values those rules mark secret, in the settings and in the
request at hand, are also cut out of every text that is stored.
"""

import re
from collections.abc import Iterable, Iterator
from functools import cache
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest
from django.http.cookie import parse_cookie
from django.views.debug import SafeExceptionReporterFilter

SUBSTITUTE = SafeExceptionReporterFilter.cleansed_substitute
# A shorter value would match ordinary words. A setting's is held to more, because the rules
# also mark plain configuration secret (AUTH_USER_MODEL, an OAuth "prompt": "consent").
MIN_REQUEST_SECRET = 4
MIN_SETTING_SECRET = 8


class StoringFilter(SafeExceptionReporterFilter):
    def is_active(self, request: HttpRequest | None) -> bool:
        return True  # what is stored is read later, by others, whatever DEBUG says


FILTER = StoringFilter()


def is_secret(name: str) -> bool:
    return FILTER.cleanse_setting(name, "") == SUBSTITUTE


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, bytes):
        yield value.decode(errors="ignore")
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _strings(item)


def _hidden(name: str, value: Any) -> Iterator[str]:
    """The strings Django's filter hides in a setting (the walk of cleanse_setting)."""
    if is_secret(name):
        yield from _strings(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _hidden(str(key), item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _hidden("", item)


@cache
def settings_secrets() -> frozenset[str]:
    found = (v for n in dir(settings) if n.isupper() for v in _hidden(n, getattr(settings, n)))
    return frozenset(v for v in found if len(v) >= MIN_SETTING_SECRET)


@receiver(setting_changed)
def _settings_changed(**kwargs: Any) -> None:
    settings_secrets.cache_clear()


def _header_secrets(name: str, value: str) -> Iterator[str]:
    yield value
    if name == "HTTP_COOKIE":
        yield from parse_cookie(value).values()
    elif len(parts := value.split()) == 2:
        yield parts[1]  # "Bearer abc", "Basic dXNlcjpwdw==": the credentials alone


def request_secrets(request: HttpRequest) -> set[str]:
    """The values in a request that the filter would hide."""
    found: set[str] = set()
    for name, value in getattr(request, "META", {}).items():
        if isinstance(value, str) and is_secret(name):
            found.update(_header_secrets(name, value))
    for name, value in getattr(request, "COOKIES", {}).items():
        if is_secret(name):
            found.add(value)
    for name, values in _parameters(request):
        marked = getattr(request, "sensitive_post_parameters", [])
        if is_secret(name) or marked == "__ALL__" or name in marked:
            found.update(values)
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        found.add(session.session_key)
    return {s for s in found if len(s) >= MIN_REQUEST_SECRET}


def _parameters(request: HttpRequest) -> Iterator[tuple[str, list[str]]]:
    yield from request.GET.lists()
    # Only a body the view already parsed: the handler must not read a request's stream.
    if "_post" in request.__dict__:
        yield from request.POST.lists()


def safe_url(request: HttpRequest) -> str:
    query = [
        (name, SUBSTITUTE if is_secret(name) else value)
        for name, values in request.GET.lists()
        for value in values
    ]
    return request.path + (f"?{urlencode(query)}" if query else "")


# A query parameter inside a request line, a URL or a query string (after "?" or "&").
_PARAMETER = re.compile(r"([?&])([^=&?\s\"#]+)=([^&\s\"#]*)")


def safe_query(text: str) -> str:
    """`text` with the value of every query parameter the rules call secret (a calendar
    feed's `key`, a `token`) replaced: for texts that carry a whole query, such as a request
    line."""
    return _PARAMETER.sub(lambda m: f"{m[1]}{m[2]}={SUBSTITUTE}" if is_secret(m[2]) else m[0], text)


def redact(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, SUBSTITUTE)
    return text


def redact_all(value: Any, secrets: Iterable[str]) -> Any:
    """`redact` on every string inside a JSON-like value."""
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {key: redact_all(item, secrets) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_all(item, secrets) for item in value]
    return value
