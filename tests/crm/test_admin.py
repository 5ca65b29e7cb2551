"""The Django admin: every model listed with search and filters in a bounded number of queries,
and "Run now" for jobs."""

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse
from django_celery_beat.models import PeriodicTask

from crm.celery import app as celery_app
from crm.models import JobRun
from tests.factories import AccountFactory, InvoiceFactory, TaskFactory


@pytest.fixture
def some_data(rep):
    for _ in range(5):
        TaskFactory(owner=rep, account=AccountFactory())
        InvoiceFactory()


@pytest.mark.django_db
def test_every_model_has_a_changelist_that_loads_in_bounded_queries(
    client, administrator, some_data, django_assert_max_num_queries
):
    client.force_login(administrator)
    for model, model_admin in admin.site._registry.items():
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        with django_assert_max_num_queries(14):
            response = client.get(url, {"q": "a"} if model_admin.search_fields else {})
        assert response.status_code == 200, url


@pytest.mark.django_db
def test_a_rep_cannot_open_the_admin(client, rep):
    client.force_login(rep)

    response = client.get(reverse("admin:crm_jobrun_changelist"))

    assert response.status_code == 302 and "/login/" in response["Location"]


@pytest.mark.django_db
def test_run_now_runs_the_selected_job_through_the_engine(
    client, administrator, django_capture_on_commit_callbacks
):
    call_command("sync_schedules", verbosity=0)
    task = PeriodicTask.objects.get(name="outbox_send")
    client.force_login(administrator)
    celery_app.conf.task_always_eager = True
    try:
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("admin:django_celery_beat_periodictask_changelist"),
                {"action": "run_now", "_selected_action": [task.pk]},
                follow=True,
            )
    finally:
        celery_app.conf.task_always_eager = False

    assert "Queued: outbox_send" in response.content.decode()
    run = JobRun.objects.get(job="outbox_send")
    assert (run.trigger, run.status) == ("admin", "succeeded")
