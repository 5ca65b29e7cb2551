"""The morning digest: an opt-in email of the user's day, sent once at the start of each of
their working days."""
