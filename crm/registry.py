"""Where processes register their jobs. Each app's jobs.py decorates a plain function:

    @job("finance_penalties", schedule="30 2 * * *")
    def penalties_accrue(as_of, *, dry_run=False) -> dict[str, int]: ...

The schedule is a five-field crontab in the company time zone; it is only the default that
`sync_schedules` writes into django-celery-beat, where administrators may change it.

A job whose effects cannot be taken back (money charged, email sent) says so with
`final_effects="charges late interest"`: the engine then refuses an as_of in the future unless
the operator forces it.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from croniter import croniter
from django.core.exceptions import ImproperlyConfigured

Counts = dict[str, int]
JobFunction = Callable[..., Counts]


class UnknownJob(LookupError):
    def __init__(self, name: str) -> None:
        known = ", ".join(sorted(_jobs)) or "none"
        super().__init__(f"unknown job {name!r} (known jobs: {known})")


@dataclass(frozen=True)
class Job:
    name: str
    func: JobFunction
    schedule: str
    description: str
    final_effects: str = ""

    def __call__(self, as_of: datetime, *, dry_run: bool = False) -> Counts:
        return self.func(as_of, dry_run=dry_run)


_jobs: dict[str, Job] = {}


def job(
    name: str, *, schedule: str, description: str = "", final_effects: str = ""
) -> Callable[[JobFunction], JobFunction]:
    if not croniter.is_valid(schedule):
        raise ImproperlyConfigured(f"job {name!r}: {schedule!r} is not a crontab expression")

    def register(func: JobFunction) -> JobFunction:
        existing = _jobs.get(name)
        if existing and existing.func.__qualname__ != func.__qualname__:
            raise ImproperlyConfigured(f"two jobs are registered as {name!r}")
        doc = description or (func.__doc__ or "").strip().split("\n")[0]
        _jobs[name] = Job(
            name=name, func=func, schedule=schedule, description=doc, final_effects=final_effects
        )
        return func

    return register


def get(name: str) -> Job:
    try:
        return _jobs[name]
    except KeyError:
        raise UnknownJob(name) from None


def all_jobs() -> list[Job]:
    return sorted(_jobs.values(), key=lambda j: j.name)


def unregister(name: str) -> None:
    """For tests that register a job of their own."""
    _jobs.pop(name, None)
