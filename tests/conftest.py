import os

import pytest
from django.core.cache import cache
from django.db import connection

from crm import registry
from tests.factories import TeamFactory, UserFactory


@pytest.fixture(autouse=True)
def empty_cache():
    """Nothing a test caches is seen by the next test."""
    cache.clear()


@pytest.fixture
def rep(db):
    return UserFactory(username="rita_rep", role="rep", team=TeamFactory(name="North"))


@pytest.fixture
def manager(db):
    return UserFactory(username="manny_manager", role="manager", team=TeamFactory(name="North"))


@pytest.fixture
def administrator(db):
    return UserFactory(
        username="ada_admin",
        role="admin",
        is_staff=True,
        is_superuser=True,
        email="ada@vigil.example",
    )


@pytest.fixture
def make_job():
    """Register throw-away jobs for a test; they are unregistered afterwards."""
    names = []

    def register(name, func, schedule="0 6 * * *"):
        registry.job(name, schedule=schedule)(func)
        names.append(name)
        return registry.get(name)

    yield register
    for name in names:
        registry.unregister(name)


@pytest.fixture
def subprocess_env(transactional_db):
    """Environment for a child process that must see this test's (committed) database."""
    db = connection.settings_dict
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(
        DJANGO_SETTINGS_MODULE="crm.settings_test",
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        PYTHONUNBUFFERED="1",
    )
    return env
