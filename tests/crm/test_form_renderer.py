"""The form renderer writes a <select> and an <input> in Python, character for character what
Django's templates write, without rendering a template per option or per input."""

import pytest
from django import forms
from django.forms.renderers import DjangoTemplates
from django.test.signals import template_rendered
from django.utils.safestring import mark_safe
from django.utils.translation import gettext_lazy

from crm.models import User
from crm.renderers import FormRenderer
from tests.factories import UserFactory

HOSTILE = '"><script>alert(1)</script>&amp;'


class Everything(forms.Form):
    plain = forms.ChoiceField(choices=[("a", "A"), ("b", "B")])
    numbers = forms.TypedChoiceField(choices=[(1, 1), (2, 2.5)], coerce=int)
    escaped = forms.ChoiceField(choices=[(HOSTILE, HOSTILE), ("safe", mark_safe("<b>bold</b>"))])
    lazy = forms.ChoiceField(choices=[("x", gettext_lazy("Any status"))], required=False)
    grouped = forms.ChoiceField(
        choices=[("", "None"), ("Fruit", [("apple", "Apple"), ("pear", "Pear")]), ("z", "Z")]
    )
    many = forms.MultipleChoiceField(choices=[(str(n), f"Option {n}") for n in range(50)])
    attrs = forms.ChoiceField(
        choices=[("a", "A")],
        widget=forms.Select(
            attrs={"hx-get": HOSTILE, "disabled": True, "hidden": False, "data-n": 3}
        ),
    )
    nullable = forms.NullBooleanField()
    people = forms.ModelChoiceField(queryset=User.objects.order_by("pk"), empty_label="Everyone")


BOUND = {
    "plain": "b",
    "numbers": "2",
    "escaped": HOSTILE,
    "grouped": "pear",
    "many": ["3", "7", "49"],
    "nullable": "true",
}


@pytest.mark.django_db
@pytest.mark.parametrize("data", [None, BOUND], ids=["unbound", "bound"])
def test_every_select_is_what_djangos_templates_write(data):
    people = UserFactory.create_batch(3, first_name=HOSTILE)
    if data:
        data = {**data, "people": str(people[1].pk)}
    ours, django = (
        Everything(data, renderer=FormRenderer()),
        Everything(data, renderer=DjangoTemplates()),
    )
    for name in Everything.base_fields:
        assert str(ours[name]) == str(django[name]), name
    assert HOSTILE not in str(ours["escaped"])  # escaped, not written as given
    if data:
        assert "selected>Pear</option>" in str(ours["grouped"])


def rendered_by(field) -> tuple[str, list[str]]:
    """A bound field's HTML, and the templates rendered to write it."""
    rendered: list[str] = []

    def seen(sender, template, **kwargs):
        rendered.append(template.name)

    template_rendered.connect(seen)
    try:
        return str(field), rendered
    finally:
        template_rendered.disconnect(seen)


def test_a_select_renders_no_template_per_option():
    html, ours = rendered_by(Everything(renderer=FormRenderer())["many"])
    _, djangos = rendered_by(Everything(renderer=DjangoTemplates())["many"])

    assert html.count("<option") == 50
    assert not any("select" in name for name in ours)
    assert djangos.count("django/forms/widgets/select_option.html") == 50  # what it replaces


class Inputs(forms.Form):
    text = forms.CharField(widget=forms.TextInput(attrs={"placeholder": HOSTILE, "size": 40}))
    empty = forms.CharField(required=False)
    number = forms.IntegerField(min_value=1, max_value=1000)
    amount = forms.DecimalField(decimal_places=2)
    email = forms.EmailField(widget=forms.EmailInput(attrs={"autofocus": True, "hidden": False}))
    url = forms.URLField(assume_scheme="https")
    hidden = forms.CharField(widget=forms.HiddenInput)
    password = forms.CharField(widget=forms.PasswordInput(render_value=True))
    secret = forms.CharField(widget=forms.PasswordInput)  # never shows what was typed
    day = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    at = forms.DateTimeField()
    time = forms.TimeField()
    search = forms.CharField(widget=forms.SearchInput)
    phone = forms.CharField(widget=forms.TelInput)
    colour = forms.CharField(widget=forms.ColorInput)
    upload = forms.FileField()
    agreed = forms.BooleanField()
    ticked = forms.BooleanField(initial=True)
    safe = forms.CharField(initial=mark_safe("<b>kept</b>"))


INPUTS_BOUND = {
    "text": HOSTILE,
    "number": "12",
    "amount": "1.5",
    "email": "a@b.example",
    "url": "https://x.example/?a=1&b=2",
    "hidden": HOSTILE,
    "password": HOSTILE,
    "secret": HOSTILE,
    "day": "2026-12-08",
    "at": "2026-12-08 10:30",
    "time": "10:30",
    "agreed": "on",
}


@pytest.mark.parametrize("data", [None, INPUTS_BOUND], ids=["unbound", "bound"])
def test_every_input_is_what_djangos_templates_write(data):
    ours, django = Inputs(data, renderer=FormRenderer()), Inputs(data, renderer=DjangoTemplates())
    for name in Inputs.base_fields:
        assert str(ours[name]) == str(django[name]), name
        assert str(ours[name]).startswith("<input"), name
    assert HOSTILE not in str(ours["text"])
    if data:
        assert " checked" in str(ours["agreed"])
        assert HOSTILE not in str(ours["secret"]) and "value" not in str(ours["secret"])


def test_an_input_renders_no_template():
    html, ours = rendered_by(Inputs(renderer=FormRenderer())["agreed"])
    _, djangos = rendered_by(Inputs(renderer=DjangoTemplates())["agreed"])

    assert html.startswith('<input type="checkbox" name="agreed"')
    assert ours == []
    assert "django/forms/widgets/input.html" in djangos  # what it replaces


def test_the_project_renders_forms_with_it(settings):
    from django.forms.renderers import get_default_renderer

    assert settings.FORM_RENDERER == "crm.renderers.FormRenderer"
    assert isinstance(get_default_renderer(), FormRenderer)
