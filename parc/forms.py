from django import forms

from parc import schedule


class ScheduleForm(forms.Form):
    day = forms.ChoiceField(choices=schedule.DAYS, label="Day of the week")
    time = forms.TimeField(
        label="Time of day",
        widget=forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        help_text="In the company time zone.",
    )
