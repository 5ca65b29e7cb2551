import ipaddress
import socket

import pytest
from aiosmtpd.controller import Controller

from tests.imapserver import (  # noqa: F401 - fixtures
    dovecot,
    dovecot_tls,
    dovecot_without_plain,
    imap_user,
    oauth_provider,
)
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


class Resolver:
    """The system resolver as a test wants it (there is no DNS server to set up): `answers`
    maps a name to one answer per lookup, the last repeated; an answer is a list of addresses
    or an OSError to raise. A name not in `answers` is unknown. IP addresses go to the real
    resolver and are not counted. `lookups` lists the names asked, in order."""

    def __init__(self, real):
        self.real = real
        self.answers: dict[str, list] = {}
        self.lookups: list[str] = []

    def __call__(self, host, port, family=0, type=0, proto=0, flags=0):  # noqa: A002
        try:
            ipaddress.ip_address(str(host).split("%")[0])
        except ValueError:
            pass
        else:
            return self.real(host, port, family, type, proto, flags)
        self.lookups.append(host)
        answers = self.answers.get(host) or [socket.gaierror(socket.EAI_NONAME, "unknown")]
        answer = answers[min(len(self.lookups_of(host)) - 1, len(answers) - 1)]
        if isinstance(answer, OSError):
            raise answer
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (address, int(port or 0), 0, 0) if ":" in address else (address, int(port or 0)),
            )
            for address in answer
        ]

    def lookups_of(self, host: str) -> list[str]:
        return [name for name in self.lookups if name == host]


@pytest.fixture
def resolver(monkeypatch):
    fake = Resolver(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    return fake


class Connections:
    """Every TCP connect to `port`, as (address, port); addresses in `refused` are refused
    and those in `silent` time out, without touching the network."""

    def __init__(self, real):
        self.real = real
        self.port: int | None = None
        self.made: list[tuple[str, int]] = []
        self.refused: set[str] = set()
        self.silent: set[str] = set()

    def connect(self, sock, address):
        if isinstance(address, tuple) and address[1] == self.port:
            self.made.append((address[0], address[1]))
        if isinstance(address, tuple) and address[0] in self.refused:
            raise ConnectionRefusedError(111, "Connection refused")
        if isinstance(address, tuple) and address[0] in self.silent:
            raise TimeoutError("timed out")
        return self.real(sock, address)


@pytest.fixture
def connections(monkeypatch):
    spy = Connections(socket.socket.connect)
    monkeypatch.setattr(socket.socket, "connect", lambda sock, address: spy.connect(sock, address))
    return spy
