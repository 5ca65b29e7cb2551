from django.dispatch import Signal

# Sent once when a job is disabled after repeated failures: job (name), failures (how many in a
# row), last_run (JobRun). monitoring/ turns it into an email to the administrators; crm/ itself
# knows nothing of email.
job_disabled = Signal()

# Sent after a user changed a sales object through Vigil (completed a task, moved an
# opportunity...): kind ("task", "opportunity", "event", "dispatch", "invoice"), object_id,
# actor (User), at (datetime). notifications/ re-checks what it said about that object.
object_changed = Signal()
