import pytest
from aiosmtpd.controller import Controller

from tests.mailsync.smtp import Recorder, free_port


@pytest.fixture
def smtp_server(settings):
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", controller.port
    yield recorder
    controller.stop()
