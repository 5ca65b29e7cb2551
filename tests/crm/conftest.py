import pytest

from tests.factories import TeamFactory, UserFactory


@pytest.fixture
def north(db):
    return TeamFactory(name="North")


@pytest.fixture
def rita(north):
    """A rep of North: the leads pages' user."""
    return UserFactory(username="rita", first_name="Rita", role="rep", team=north)
