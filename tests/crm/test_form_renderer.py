"""The form renderer writes a <select> in Python, character for character what Django's
templates write, without rendering a template per option."""

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


def test_a_select_renders_no_template_per_option():
    rendered: list[str] = []

    def seen(sender, template, **kwargs):
        rendered.append(template.name)

    template_rendered.connect(seen)
    try:
        form = Everything(renderer=FormRenderer())
        html = str(form["many"])
        ours = list(rendered)
        rendered.clear()
        str(Everything(renderer=DjangoTemplates())["many"])
    finally:
        template_rendered.disconnect(seen)
    assert html.count("<option") == 50
    assert not any("select" in name for name in ours)
    assert rendered.count("django/forms/widgets/select_option.html") == 50  # what it replaces


def test_the_project_renders_forms_with_it(settings):
    from django.forms.renderers import get_default_renderer

    assert settings.FORM_RENDERER == "crm.renderers.FormRenderer"
    assert isinstance(get_default_renderer(), FormRenderer)
