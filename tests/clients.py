"""Test clients signed in as a given user."""

from django.test import Client


def logged_in(user, **kwargs) -> Client:
    """`kwargs` go to Client, e.g. enforce_csrf_checks=True."""
    client = Client(**kwargs)
    client.force_login(user)
    return client


# The header htmx sends with each request it makes.
HTMX = {"HX-Request": "true"}
