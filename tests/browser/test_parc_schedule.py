"""An administrator moves the weekly PARC run to another day in the admin, in Chromium."""

from datetime import time

import pytest

from crm.schedules import sync_schedules
from parc import schedule
from tests.browser.conftest import sign_in
from tests.factories import UserFactory


@pytest.fixture
def ada(transactional_db):
    sync_schedules()
    return UserFactory(
        username="ada", first_name="Ada", role="admin", is_staff=True, is_superuser=True
    )


def test_an_administrator_changes_the_parc_day(new_page, ada):
    page = new_page()
    sign_in(page, "ada")
    page.goto("/admin/")
    page.click("text=PARC settings")
    page.click("text=Day and time of the PARC run")

    assert page.input_value("select[name=day]") == "1"  # Monday, the default
    page.select_option("select[name=day]", label="Thursday")
    page.fill("input[name=time]", "07:30")
    page.click("input[type=submit]")

    page.wait_for_selector("text=PARC now runs every Thursday at 07:30")
    assert page.input_value("select[name=day]") == "4"
    assert schedule.current() == ("4", time(7, 30))
