"""{% when value %}: a date or datetime in the one format, the viewer's time zone, and how far
it is from now ("in 3 h"). {% when value ago=False %} leaves the distance out."""

from django import template

from crm import dates

register = template.Library()


@register.simple_tag(takes_context=True)
def when(context, at, ago=True):
    return dates.when(at, context.get("now"), ago=ago)
