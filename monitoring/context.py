"""Where an error happened: the request (URL, method, user), the job run, the management
command or the Celery task. Read from the log record and from the locals of the frames it went
through, so no query is made and the code that logs need not pass anything."""

import logging
import sys
from collections.abc import Iterator
from types import FrameType
from typing import Any

from monitoring import scrubbing


def exception_of(record: logging.LogRecord) -> BaseException | None:
    return record.exc_info[1] if record.exc_info and record.exc_info[1] else None


def _frames(record: logging.LogRecord) -> Iterator[FrameType]:
    """The frames an occurrence happened in, innermost first: where it was logged, then (for an
    exception that was caught higher up) where it was raised."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None:
        yield frame
        frame = frame.f_back
    exc = exception_of(record)
    tb = exc.__traceback__ if exc is not None else None
    raised = []
    while tb is not None:
        raised.append(tb.tb_frame)
        tb = tb.tb_next
    yield from reversed(raised)


def _is(value: Any, kind: type) -> bool:
    # Not isinstance(): it would ask a lazy object (request.user) for its __class__, a query.
    return issubclass(type(value), kind)


def _local(frame: FrameType, name: str) -> Any:
    code = frame.f_code
    if name in code.co_varnames or name in code.co_cellvars:
        return frame.f_locals.get(name)
    return None


def where(record: logging.LogRecord) -> tuple[dict[str, Any], set[str]]:
    """Where it happened: the request (URL, method, user), the job run, the management command
    or the Celery task; and the secret values that request carried. Read from the record and
    from the frames' locals: no query, and nothing the code that logged must remember to pass."""
    from django.core.management.base import BaseCommand
    from django.http import HttpRequest

    from crm.models import JobRun

    request = getattr(record, "request", None)
    run = command = None
    for frame in _frames(record):
        if not _is(request, HttpRequest):
            request = _local(frame, "request")
        if run is None and _is(candidate := _local(frame, "run"), JobRun):
            run = candidate
        if command is None and _is(candidate := _local(frame, "self"), BaseCommand):
            command = type(candidate).__module__.rpartition(".")[2]
    context: dict[str, Any] = {}
    secrets: set[str] = set()
    if request is not None and _is(request, HttpRequest):
        # Only a user the request already loaded: looking one up would be a query.
        user = getattr(request, "_cached_user", None)
        context["request"] = {
            "method": request.method,
            "url": scrubbing.safe_url(request),
            "user_id": user.pk if user is not None and user.is_authenticated else None,
        }
        secrets = scrubbing.request_secrets(request)
    if run is not None:
        context["job"] = {"name": run.job, "run_id": run.pk}
    if command is not None:
        context["command"] = command
    task = _celery_task()
    if task:
        context["task"] = task
    return context, secrets


def _celery_task() -> dict[str, str] | None:
    from celery import current_task

    if current_task and current_task.request.id:
        return {"name": current_task.name, "id": current_task.request.id}
    return None
