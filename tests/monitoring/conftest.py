import pytest
from django.utils import timezone

from monitoring import capture, heartbeat


@pytest.fixture(autouse=True)
def capture_resumed(monkeypatch):
    """Another test may have made the handler pause after a database failure."""
    monkeypatch.setattr(capture, "_paused_until", 0.0)


@pytest.fixture
def beat_ticked(db):
    heartbeat.record(heartbeat.BEAT, timezone.now())
