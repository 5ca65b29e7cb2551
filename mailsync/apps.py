from django.apps import AppConfig


class MailsyncConfig(AppConfig):
    name = "mailsync"
    verbose_name = "Mail (outbox and sync)"

    def ready(self) -> None:
        from mailsync import signals, suppression, webhooks  # noqa: F401 - anymail receiver

        signals.inbound_email.connect(suppression.unsubscribe_by_mail)
