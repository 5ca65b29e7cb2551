"""The form renderer: Django's, with <select> and <input> written out in Python.

Django renders a select through a template that includes another template for each option: an
owner filter of 200 people, or the time zones, cost more than the rest of a list page together.
An input is a template that includes two more: the admin's list renders one per row (the
action checkbox), a third of its page. This renderer writes the same characters as those
templates (tests/crm/test_form_renderer.py compares them) and leaves every other template,
and any select whose options use a template of their own, to Django."""

import html

from django.conf import settings
from django.forms import Select
from django.forms.renderers import DjangoTemplates
from django.template.defaultfilters import stringformat
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.safestring import SafeData, mark_safe
from django.utils.timezone import template_localtime

SELECT = Select.template_name
OPTION = Select.option_template_name
# Django's inputs: each of these templates is input.html included, and nothing else.
INPUT = "django/forms/widgets/input.html"
INPUTS = {
    INPUT,
    *(
        f"django/forms/widgets/{kind}.html"
        for kind in (
            "checkbox",
            "color",
            "date",
            "datetime",
            "email",
            "file",
            "hidden",
            "number",
            "password",
            "search",
            "tel",
            "text",
            "time",
            "url",
        )
    ),
}


class FormRenderer(DjangoTemplates):
    def render(self, template_name, context, request=None):
        if template_name == SELECT:
            html = _select(context["widget"])
            if html is not None:
                return html
        if template_name in INPUTS:
            return _input(context["widget"])
        return super().render(template_name, context, request)


def _input(widget: dict) -> str:
    """The input.html template's output."""
    value = widget["value"]
    shown = "" if value is None else f" value={_quoted(_formatted(value))}"
    return mark_safe(  # noqa: S308 - every value below is escaped
        f"<input type={_quoted(widget['type'])} name={_quoted(widget['name'])}{shown}"
        f"{_attrs(widget['attrs'])}>"
    )


def _select(widget: dict) -> str | None:
    """The select.html template's output (stripped, as the renderer strips it); None when an
    option has another template."""
    parts = [f"<select name={_quoted(widget['name'])}{_attrs(widget['attrs'])}>"]
    for group_name, options, _index in widget["optgroups"]:
        if group_name:
            parts.append(f"\n  <optgroup label={_quoted(group_name)}>")
        for option in options:
            if option["template_name"] != OPTION:
                return None
            parts.append(
                f"\n  <option value={_quoted(_formatted(option['value']))}"
                f"{_attrs(option['attrs'])}>{_text(option['label'])}</option>\n"
            )  # the option template ends with a line break
        if group_name:
            parts.append("\n  </optgroup>")
    parts.append("\n</select>")
    return mark_safe("".join(parts))  # noqa: S308 - every value above is escaped


def _text(value) -> str:
    """`{{ value }}` in a template: called if callable, in the current time zone, localized,
    made a string, escaped unless safe. A plain string or whole number (an option's value
    and label, 400 of them in an administrator's owner filter) is escaped straight away:
    neither time zone nor localization changes it."""
    kind = type(value)
    if kind is str or (kind is int and not settings.USE_THOUSAND_SEPARATOR):
        return html.escape(str(value))
    if callable(value) and not getattr(value, "do_not_call_in_templates", False):
        value = value()
    return conditional_escape(str(localize(template_localtime(value))))


def _quoted(value) -> str:
    return f'"{_text(value)}"'


def _formatted(value):
    """`value|stringformat:'s'`: safe when the value was."""
    text = stringformat(value, "s")
    return mark_safe(text) if isinstance(value, SafeData) else text  # noqa: S308


def _attrs(attrs: dict) -> str:
    """attrs.html: ` name="value"`, ` name` for True, nothing for False."""
    out = []
    for name, value in attrs.items():
        if value is False:
            continue
        out.append(
            f" {_text(name)}" if value is True else f" {_text(name)}={_quoted(_formatted(value))}"
        )
    return "".join(out)
