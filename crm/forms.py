import functools

from django import forms
from django.conf import settings
from django.urls import reverse_lazy

from crm.models import User, time_zones

# The tz database also holds aliases (US/Eastern, Japan, localtime...); the list offers the
# Region/City names people look for.
REGIONS = (
    "Africa/",
    "America/",
    "Antarctica/",
    "Arctic/",
    "Asia/",
    "Atlantic/",
    "Australia/",
    "Europe/",
    "Indian/",
    "Pacific/",
)


def time_zone_choices(current: str = "") -> list[tuple[str, str]]:
    """The zones to choose from, the user's current one included even if it is an alias."""
    offered = {zone for zone in time_zones() if zone.startswith(REGIONS)} | {"UTC"}
    if current in time_zones():
        offered.add(current)
    company = [("", f"The company's ({settings.TIME_ZONE})")]
    return company + [(zone, zone.replace("_", " ")) for zone in sorted(offered)]


def time_zone_select(current: str = "") -> forms.Select:
    return forms.Select(choices=time_zone_choices(current))


def offered_zones() -> list[str]:
    """The zones time_zone_list suggests: the Region/City names, and UTC."""
    return sorted({zone for zone in time_zones() if zone.startswith(REGIONS)} | {"UTC"})


class TimeZoneInput(forms.TextInput):
    """A time zone, typed: the browser suggests zones as the user types, from a <datalist>
    fetched by htmx on the field's first focus (time_zone_list, kept by the browser a day).
    A select sent 600 options with every page: 32 KB, which made Settings slower than the
    dashboard. Without JavaScript the field takes a typed name; its help links to the list."""

    template_name = "crm/widgets/time_zone.html"

    def __init__(self, blank: str) -> None:
        super().__init__(
            attrs={
                "list": "time-zones",
                "placeholder": blank,
                "autocomplete": "off",
                "spellcheck": "false",
                "maxlength": "64",
                "hx-get": reverse_lazy("time_zones"),
                "hx-trigger": "focus once",
                "hx-target": "#time-zones",
                "hx-swap": "outerHTML",
            }
        )


class TimeZoneField(forms.CharField):
    """A time zone as typed in a TimeZoneInput: "europe/paris" and "America/New York" are
    Europe/Paris and America/New_York; anything else is left for the model's validator,
    which names it."""

    def to_python(self, value):
        typed = super().to_python(value) or ""
        if typed in time_zones():
            return typed
        return _zones_by_key().get(_zone_key(typed), typed)


def _zone_key(text: str) -> str:
    return "_".join(text.split()).casefold()


@functools.cache
def _zones_by_key() -> dict[str, str]:
    return {_zone_key(zone): zone for zone in time_zones()}


class PreferencesForm(forms.ModelForm):
    """What a user sets for themselves on their Settings page (/me/)."""

    class Meta:
        model = User
        fields = ["time_zone", "morning_digest", "alerts_at_once"]
        field_classes = {"time_zone": TimeZoneField}
        labels = {
            "morning_digest": "Email me a digest of today's work at the start of my working day",
            "alerts_at_once": "Send overdue-job alerts at once, even when I'm off duty",
        }
        help_texts = {
            "morning_digest": "Blocking items first, then what is due today, then what is "
            "overdue. None on your days off, nor on a day with nothing in it.",
            "alerts_at_once": "Otherwise an alert that comes while you are off duty waits for "
            "your next working hour, when the company counts working time.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        blank = f"The company's ({settings.TIME_ZONE})"
        self.fields["time_zone"].widget = TimeZoneInput(blank)


class ListedChoices(forms.models.ModelChoiceIterator):
    """The options of a ModelChoiceField read with one plain query, for short lists (people,
    teams: a few hundred rows, all in memory at once). Django reads them with .iterator(),
    which on PostgreSQL opens a server-side cursor (DECLARE, FETCH, CLOSE: three round trips).
    A list of a model that names its label's columns (User.LABEL_FIELDS) reads those alone,
    not whole rows: an administrator's owner filter of 211 people, 4 -> 1 ms."""

    def __iter__(self):
        if self.field.empty_label is not None:
            yield ("", self.field.empty_label)
        model = self.queryset.model
        if getattr(model, "LABEL_FIELDS", None) and not _labels_its_own(self.field):
            for key, *columns in self.queryset.values_list("pk", *model.LABEL_FIELDS):
                yield (key, model.label_of(*columns))
            return
        for obj in self.queryset.all():
            yield self.choice(obj)


def _labels_its_own(field: forms.ModelChoiceField) -> bool:
    """Whether `field` labels a choice otherwise than by the record's own name (str)."""
    return (
        field.to_field_name is not None
        or type(field).label_from_instance is not forms.ModelChoiceField.label_from_instance
    )


class ModelChoiceField(forms.ModelChoiceField):
    iterator = ListedChoices
