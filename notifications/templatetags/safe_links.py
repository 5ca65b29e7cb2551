from django import template

from crm.links import is_safe_link

register = template.Library()

register.filter("safe_link", is_safe_link)
