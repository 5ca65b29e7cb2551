from django.apps import AppConfig


class MailsyncConfig(AppConfig):
    name = "mailsync"
    verbose_name = "Mail (outbox and sync)"

    def ready(self) -> None:
        from mailsync import webhooks  # noqa: F401 - connects the anymail tracking receiver
