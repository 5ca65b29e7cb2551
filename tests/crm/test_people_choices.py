"""A list of people in a select (an owner filter, an absence's delegate) reads the columns that
name them, not whole users, and names each as a page does (User.__str__)."""

import pytest
from django import forms
from django.db import connection
from django.test.utils import CaptureQueriesContext

from crm.forms import ModelChoiceField
from crm.models import Team, User
from tests.factories import TeamFactory, UserFactory


class People(forms.Form):
    who = ModelChoiceField(queryset=User.objects.order_by("pk"), empty_label="Everyone")


class ByUsername(forms.Form):
    who = ModelChoiceField(queryset=User.objects.order_by("pk"), to_field_name="username")


class Labelled(ModelChoiceField):
    def label_from_instance(self, obj):
        return f"{obj} ({obj.email})"


class Emails(forms.Form):
    who = Labelled(queryset=User.objects.order_by("pk"))


@pytest.fixture
def people(db):
    return [
        UserFactory(username="nora", first_name="Nora", last_name="Kowalski"),
        UserFactory(username="solo", first_name="", last_name=""),
        UserFactory(username="first", first_name="Cher", last_name=""),
        UserFactory(username="evil", first_name="<b>Eve</b>", last_name="&amp;"),
    ]


def test_each_person_is_named_as_a_page_names_them(people):
    choices = list(People().fields["who"].choices)

    assert choices == [("", "Everyone"), *((person.pk, str(person)) for person in people)]
    labels = [label for _, label in choices[1:]]
    assert labels == ["Nora Kowalski", "solo", "Cher", "<b>Eve</b> &amp;"]


def test_the_select_reads_the_names_alone_and_marks_the_chosen_one(people):
    form = People({"who": str(people[0].pk)})
    assert form.is_valid() and form.cleaned_data["who"] == people[0]
    with CaptureQueriesContext(connection) as captured:
        html = str(form["who"])

    assert len(captured) == 1
    assert "password" not in captured.captured_queries[0]["sql"]
    assert f'<option value="{people[0].pk}" selected>Nora Kowalski</option>' in html
    assert "&lt;b&gt;Eve&lt;/b&gt; &amp;amp;" in html  # escaped like any label


def test_a_field_that_names_people_its_own_way_keeps_its_way(people):
    assert list(Emails().fields["who"].choices)[1][1] == "Nora Kowalski (nora@vigil.example)"
    assert list(ByUsername().fields["who"].choices)[1][0].value == "nora"


def test_other_records_are_read_whole(db):
    team = TeamFactory(name="North")

    class Teams(forms.Form):
        team = ModelChoiceField(queryset=Team.objects.all())

    assert list(Teams().fields["team"].choices)[1][1] == "North"
    assert list(Teams().fields["team"].choices)[1][0].instance == team
