"""Turns job-engine signals into email to the administrators, through the outbox."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.dispatch import receiver
from django.utils import timezone

from crm.signals import job_disabled
from mailsync import outbox


def administrator_emails() -> list[str]:
    User = get_user_model()
    users = User.objects.filter(role=User.Role.ADMIN, is_active=True).exclude(email="")
    emails = {*users.values_list("email", flat=True), *(a for _, a in settings.ADMINS)}
    return sorted(emails)


@receiver(job_disabled)
def email_admins_job_disabled(sender, job, failures, last_run, **kwargs) -> None:
    recipients = administrator_emails()
    if not recipients:
        return
    error = last_run.error.strip().splitlines()[-1] if last_run and last_run.error else "-"
    outbox.queue(
        [
            outbox.Email(
                key=f"job-disabled:{job}:{last_run.pk if last_run else 0}",
                source="monitoring",
                to=recipients,
                subject=f"[Vigil] Job {job} disabled after {failures} failures in a row",
                text_body=(
                    f"The scheduled job {job} failed {failures} times in a row and has been "
                    f"disabled, so it will not run again until an administrator re-enables it "
                    f"(Admin > Periodic tasks > {job}).\n\nLast error: {error}\n"
                    f"Full traceback: Admin > Job runs > #{last_run.pk if last_run else '-'}\n"
                ),
            )
        ],
        timezone.now(),
    )
