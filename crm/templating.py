"""The Jinja2 environment of the templates under <app>/jinja2/: the rows of the lists (leads,
contacts, accounts, invoices, email, notifications), fifty rows a page, and the dashboard's
cards, which Jinja2 renders in about a third of the time Django's engine takes. Pages around
them stay Django templates: the view renders the rows first and hands them to the page
(crm.paging.list_response), or alone to htmx.

What the Django templates get from tags and the engine, these get as functions: record_url
and url for links, when and shown for dates in the viewer's zone and localize for a date
(Django's engine formats a date by itself; Jinja2 would print it ISO), and the pluralize and
truncatechars filters; request comes from Django's backend, csrf_input from csrf() below.
These templates are ours: user-written templates (nurture) render in a sandbox of their
own."""

from django.template.backends.utils import csrf_input
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.formats import localize
from django.utils.safestring import SafeString, mark_safe
from django.utils.text import Truncator, add_truncation_text, calculate_truncate_chars_length
from django.utils.translation import pgettext
from jinja2 import Environment

from crm import dates
from crm.links import record_url


class CsrfField:
    """The form's CSRF field, made on first use and then kept for the render, as
    {% csrf_token %} is in Django's engine. Django's backend gives `csrf_input` lazily, and
    each use masks the token anew: 30 forms on a dashboard took about a millisecond."""

    def __init__(self, request):
        self.request = request
        self.html: SafeString | None = None

    def __html__(self) -> SafeString:
        if self.html is None:
            self.html = csrf_input(self.request)
        return self.html

    __str__ = __html__


def csrf(request) -> dict:
    """A context processor of these templates: `csrf_input`, a CsrfField."""
    return {"csrf_input": CsrfField(request)}


def rendered(request, name: str, context: dict) -> SafeString:
    """Template `name` (one of these) rendered for a Django page to put in as it is: Jinja2
    escaped every value it shows."""
    return mark_safe(render_to_string(name, context, request))  # noqa: S308


def url(name: str, *args) -> str:
    return reverse(name, args=args)


def pluralize(count: int, suffix: str = "s") -> str:
    return "" if count == 1 else suffix


def truncatechars(text: str, length: int) -> str:
    """Django's filter of the name: at most `length` characters, the last an ellipsis. The
    email list calls it twice a row, and Django's Truncator tests each character for a
    combining mark in Python (about 1.5 ms of a 50-row page): ASCII text, which has none and is
    its own NFC form, is cut here to the same result."""
    text, length = str(text), int(length)
    if length <= 0 or not text.isascii():
        return Truncator(text).chars(length)
    if len(text) <= length:
        return text
    ellipsis = pgettext("String to return when truncating text", "%(truncated_text)s…")
    return add_truncation_text(text[: calculate_truncate_chars_length(length, ellipsis)], ellipsis)


def environment(**options) -> Environment:
    # Django's backend asks for autoescaping already; these are HTML templates, whatever asks.
    options.pop("autoescape", None)
    env = Environment(autoescape=True, **options)
    env.globals.update(
        record_url=record_url, url=url, when=dates.when, shown=dates.shown, localize=localize
    )
    env.filters["pluralize"] = pluralize
    env.filters["truncatechars"] = truncatechars
    return env
