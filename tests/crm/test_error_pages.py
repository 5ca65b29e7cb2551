"""403, 404 and 500 pages look like Vigil, say what happened in plain words, lead back to the
dashboard and never show a traceback (DEBUG off, as in production)."""

import pytest
from django.urls import path

from crm.urls import urlpatterns as site_patterns


def explode(request):
    raise RuntimeError("secret detail of a failure")


# The site's URLs plus one view that fails (used through @pytest.mark.urls).
urlpatterns = [path("explode/", explode), *site_patterns]


@pytest.fixture(autouse=True)
def production(settings):
    settings.DEBUG = False


def assert_looks_like_vigil(html: str) -> None:
    assert 'class="brand"' in html and "vigil.css" in html and "pages.css" in html
    assert "Back to the dashboard" in html
    assert "Traceback" not in html


@pytest.mark.django_db
def test_an_unknown_address_gets_the_404_page(client, rep):
    client.force_login(rep)

    response = client.get("/no/such/page/")

    html = response.content.decode()
    assert response.status_code == 404
    assert "We can't find that page" in html and "/no/such/page/" in html
    assert "Log out" in html  # the usual navigation: the rep is still signed in
    assert_looks_like_vigil(html)


@pytest.mark.django_db
def test_an_anonymous_visitor_gets_the_404_page_without_navigation(client):
    response = client.get("/no/such/page/")

    html = response.content.decode()
    assert response.status_code == 404
    assert "Log out" not in html
    assert_looks_like_vigil(html)


@pytest.mark.django_db
def test_a_rep_opening_the_locked_users_page_gets_the_403_page(client, rep):
    client.force_login(rep)

    response = client.get("/team/locked/")

    html = response.content.decode()
    assert response.status_code == 403
    assert "You don't have access to this page" in html
    assert "Log out" in html  # the usual navigation: the rep is still signed in
    assert_looks_like_vigil(html)


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_a_failing_view_gets_the_500_page_without_its_details(client, rep):
    client.force_login(rep)
    client.raise_request_exception = False

    response = client.get("/explode/")

    html = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong on our side" in html
    assert "secret detail" not in html and "RuntimeError" not in html
    assert_looks_like_vigil(html)
