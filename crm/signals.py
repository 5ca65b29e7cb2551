from django.dispatch import Signal

# Sent once when a job is disabled after repeated failures: job (name), failures (how many in a
# row), last_run (JobRun). monitoring/ turns it into an email to the administrators; crm/ itself
# knows nothing of email.
job_disabled = Signal()
