import pytest
from aiosmtpd.controller import Controller

from tests.imapserver import dovecot, imap_user, oauth_provider  # noqa: F401 - fixtures
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


@pytest.fixture
def google(settings, oauth_provider, dovecot, imap_user):  # noqa: F811
    """Google, as far as Vigil can tell, is the test provider in front of the test Dovecot."""
    settings.VIGIL_SITE_URL = "http://testserver"
    settings.VIGIL_MAIL_PROVIDERS = {
        **settings.VIGIL_MAIL_PROVIDERS,
        "google": {
            "label": "Google",
            "client_id": oauth_provider.client_id,
            "client_secret": oauth_provider.client_secret,
            "authorize_url": oauth_provider.authorize_url,
            "token_url": oauth_provider.token_url,
            "scope": "https://mail.google.com/",
            "extra_authorize_params": {"access_type": "offline", "prompt": "consent"},
            "imap_host": dovecot.host,
            "imap_port": dovecot.port,
            "imap_security": "none",
        },
    }
    return oauth_provider
