"""Templates are user input: rendered in Jinja2's immutable sandbox over plain strings, HTML
escaped, size-capped; refused on save with one message naming the problem. The public sandbox
escapes are refused, and inert even in a row that skipped validation."""

import re

import pytest
from django.core.exceptions import ValidationError
from jinja2 import TemplateError

from nurture import sandbox
from nurture.models import EmailTemplate

FIELDS = {"first_name": "Ana", "name": "Ana Lopez", "company": "<b>Acme</b> & Co"}

ESCAPES = [
    "{{ name.__class__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ name.__class__.__base__.__subclasses__() }}",
    "{{ self.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ config.items() }}",
    "{{ request.application.__globals__ }}",
    "{{ name|attr('__class__') }}",
    "{{ (name|attr('__class__')|attr('__mro__'))[1] }}",
    "{{ '{0.__class__}'|format(name) }}",
    "{{ '%s'|format(name) }}",
    "{{ '{0.__class__.__init__.__globals__}'.format(name) }}",
    "{{ '{x.__class__}'.format_map({'x': name}) }}",
    "{% set f = '{0.__class__}'.format %}{{ f(name) }}",
    "{{ name.format }}",
    "{{ ('{0.__class__}'|attr('format'))(name) }}",
    "{{ name|map('upper')|list }}",
    "{{ [name]|map(attribute='__class__')|list }}",
    "{% for c in name %}{% for d in name %}{{ c }}{% endfor %}{% endfor %}",
    "{{ 'x' * 100000000 }}",
    "{{ 9 ** 9 ** 9 }}",
    "{% include 'secrets.html' %}",
    "{% extends 'base.html' %}",
    "{% import 'os' as os %}",
    "{% macro m() %}{% endmacro %}",
    "{{ range(10) }}",
    "{{ name|safe }}",
]


@pytest.mark.parametrize("payload", ESCAPES)
def test_public_sandbox_escapes_are_refused(payload):
    with pytest.raises(sandbox.TemplateRefused):
        sandbox.check(payload)


@pytest.mark.parametrize("payload", ESCAPES)
def test_a_payload_that_skipped_validation_still_renders_nothing_of_python(payload):
    """Even without the check, the sandbox itself refuses or renders harmless text."""
    try:
        out = sandbox.HTML.from_string(payload).render(FIELDS)
    except (TemplateError, sandbox.SecurityError):
        return
    for leak in ("<class", "__", "globals", "module", "uid="):
        assert leak not in out


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("Hello {{ name ", "Syntax error on line 1"),
        ("{% if name %}Hello", "Syntax error on line 1"),
        ("Hello {{ surname }}", "Unknown merge field “surname”"),
        ("{{ name.upper }}", "attribute access"),
        ("{{ name.upper() }}", "calling a function or method"),
        ("{{ company[0] }}", "item access"),
        ("{{ name|attr('x') }}", "The filter “attr” is not allowed"),
        ("{{ name|format }}", "The filter “format” is not allowed"),
        ("{% for c in name %}{% endfor %}", "loops"),
        ("{% set x = name %}", "assignments"),
        ("{{ name * 3 }}", "arithmetic (*)"),
        ("{% if name is callable %}{% endif %}", "The test “callable” is not allowed"),
    ],
)
def test_each_refusal_names_its_reason(source, message):
    with pytest.raises(sandbox.TemplateRefused, match=re.escape(message)):
        sandbox.check(source)


@pytest.mark.django_db
def test_saving_a_bad_template_is_refused_with_one_message_per_field():
    template = EmailTemplate(name="Bad", subject="Hi {{ nickname }}", body="{{ name.__class__ }}")

    with pytest.raises(ValidationError) as refused:
        template.full_clean()

    assert refused.value.message_dict == {
        "subject": ["Unknown merge field “nickname”."],
        "body": ["Not allowed in a template on line 1: attribute access (x.y)."],
    }


def test_merge_fields_are_escaped_in_html_and_plain_in_subjects():
    html = sandbox.render("<p>{{ company }} — {{ name|upper }}</p>", FIELDS)
    subject = sandbox.render("{{ company }}", FIELDS, autoescape=False)

    assert html == "<p>&lt;b&gt;Acme&lt;/b&gt; &amp; Co — ANA LOPEZ</p>"
    assert subject == "<b>Acme</b> & Co"
    assert sandbox.text_from_html(html) == "<b>Acme</b> & Co — ANA LOPEZ"


def test_what_a_template_may_use():
    source = (
        "{% if company %}{{ first_name|default('there') }} at {{ company|truncate(9) }}"
        "{% else %}Hello{% endif %}{{ ' ~ ' ~ owner_name|trim }}"
    )
    sandbox.check(source)
    fields = {**FIELDS, "company": "Globex Foods International"}
    assert sandbox.render(source, fields) == "Ana at Globex... ~ "


def test_output_is_capped():
    big = "{{ name }}" * 5_000  # within the source cap; 150,000 characters out

    with pytest.raises(sandbox.TemplateRefused, match="longer than 50,000"):
        sandbox.check(big + ".")
    with pytest.raises(sandbox.OutputTooLarge):
        sandbox.render(big, {"name": "x" * 30})


def test_values_are_plain_strings_whatever_is_passed():
    class Model:
        def __str__(self):
            return "a model"

        secret = "s3cret"

    assert sandbox.render("{{ name }}", {"name": Model()}) == "a model"
