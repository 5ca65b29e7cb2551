"""A real IMAP server (Debian's Dovecot) and a small local OAuth 2.0 provider, for mailbox sync
tests and the mail sync benchmark (bench/mailsync.py). Nothing here is a mock: Dovecot is the
packaged binary run in the foreground with a throwaway configuration, and it checks XOAUTH2 /
OAUTHBEARER tokens by POSTing them to `OAuthProvider`'s RFC 7662 introspection endpoint, as it
would against a real identity provider.

`make test` installs Dovecot (`bin/test-services`: apt-get install dovecot-imapd).

Typical use in a test (the fixtures are at the bottom of this module)::

    def test_something(dovecot, oauth_provider, imap_user):
        dovecot.append(imap_user.address, "INBOX", b"Subject: hi\\r\\n\\r\\nbody\\r\\n")
        access, refresh = oauth_provider.issue_tokens(imap_user.address)
        with dovecot.client(imap_user.address) as imap:  # a logged-in imapclient.IMAPClient
            ...

Users log in with their full address (`name@example.test`), as with Gmail or Microsoft 365; the
OAuth provider's tokens are issued to, and introspect as, that same address.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import grp
import hashlib
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote_plus, urlencode, urlsplit, urlunsplit

import imapclient
import pytest

DOMAIN = "example.test"
MISSING_DOVECOT = (
    "dovecot is not installed (no /usr/sbin/dovecot): `make test` installs it "
    "(bin/test-services: apt-get install dovecot-imapd)"
)
STARTUP_TIMEOUT = 10.0  # seconds to wait for Dovecot's IMAP greeting
IMAP_TIMEOUT = 30.0  # socket timeout of the clients this module opens


def free_port() -> int:
    """A TCP port nobody listens on right now (the caller binds it soon after; see `Dovecot`
    for the retry when someone else was faster)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _b64url_sha256(text: str) -> str:
    """PKCE S256 (RFC 7636 §4.2): BASE64URL(SHA256(ASCII(code_verifier))), no padding."""
    digest = hashlib.sha256(text.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# --------------------------------------------------------------------------------------------------
# OAuth 2.0 provider
# --------------------------------------------------------------------------------------------------


@dataclass
class _AccessToken:
    user: str
    scope: str
    expires_at: float  # time.time()


@dataclass
class _Code:
    """An authorization code waiting for its POST /token (with the PKCE challenge, S256)."""

    redirect_uri: str
    user: str
    scope: str
    challenge: str | None
    expires_at: float


class OAuthProvider:
    """A small OAuth 2.0 authorization server on 127.0.0.1 (a free port), in a thread.

    Endpoints: `GET /authorize` (authorization code, PKCE S256; consent is automatic, as the
    user `approve_as`, else the `login_hint`), `POST /token` (grants `authorization_code` and
    `refresh_token`; client authentication by HTTP Basic or by `client_id`/`client_secret` in the
    form), and `POST /introspect` (RFC 7662, which Dovecot's oauth2 passdb calls with
    `introspection_mode = post` for every XOAUTH2/OAUTHBEARER login).

    Test controls: `expire_access_tokens()`, `revoke(user)`, `issue_tokens(user)`, the counters
    `token_requests` and `refresh_count`, `expires_in` (seconds, for new access tokens),
    `deny_consent` (the next authorizations answer `error=access_denied`) and the list
    `authorize_requests` (query parameters of each `GET /authorize`, to check what a client sent).
    """

    def __init__(
        self,
        client_id: str = "vigil-test-client",
        client_secret: str = "vigil-test-secret",
        expires_in: int = 3600,
        require_pkce: bool = True,
    ):
        self.client_id = client_id
        self.client_secret = client_secret
        self.expires_in = expires_in
        self.require_pkce = require_pkce
        self.approve_as: str | None = None
        self.deny_consent = False
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests = 0  # every POST /token, good or bad
        self.refresh_count = 0  # every POST /token with grant_type=refresh_token, good or bad
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._access: dict[str, _AccessToken] = {}
        self._refresh: dict[str, tuple[str, str]] = {}  # refresh token -> (user, scope)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # -- lifecycle

    def start(self) -> OAuthProvider:
        handler = type("Handler", (_OAuthHandler,), {"provider": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        host, port = self._server.server_address[:2]
        self.base_url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="oauth-provider",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> OAuthProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def authorize_url(self) -> str:
        return f"{self.base_url}/authorize"

    @property
    def token_url(self) -> str:
        return f"{self.base_url}/token"

    @property
    def introspect_url(self) -> str:
        return f"{self.base_url}/introspect"

    # -- test controls

    def issue_tokens(self, user: str, scope: str = "imap") -> tuple[str, str]:
        """(access_token, refresh_token) for `user`, as if the browser flow had just happened."""
        with self._lock:
            refresh = "rt-" + secrets.token_urlsafe(24)
            self._refresh[refresh] = (user, scope)
            return self._new_access_token(user, scope), refresh

    def expire_access_tokens(self) -> None:
        """Every access token issued so far becomes inactive (refresh tokens still work)."""
        with self._lock:
            for token in self._access.values():
                token.expires_at = 0.0

    def revoke(self, user: str) -> None:
        """The user withdraws consent: their refresh and access tokens stop working. A new
        authorization (browser flow or `issue_tokens`) gives working tokens again."""
        with self._lock:
            self._refresh = {k: v for k, v in self._refresh.items() if v[0] != user}
            self._access = {k: v for k, v in self._access.items() if v.user != user}

    def active_user(self, access_token: str) -> str | None:
        """Whom a live access token belongs to (None when unknown, expired or revoked)."""
        with self._lock:
            token = self._access.get(access_token)
            if token is None or token.expires_at <= time.time():
                return None
            return token.user

    # -- internals, for the request handler

    def _new_access_token(self, user: str, scope: str) -> str:
        access = "at-" + secrets.token_urlsafe(24)
        self._access[access] = _AccessToken(user, scope, time.time() + self.expires_in)
        return access

    def _token_response(self, access: str, refresh: str, scope: str) -> dict:
        return {
            "access_token": access,
            "refresh_token": refresh,
            "expires_in": self.expires_in,
            "token_type": "Bearer",
            "scope": scope,
        }

    def _authorize(self, params: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for GET /authorize."""
        with self._lock:
            self.authorize_requests.append(dict(params))
        if params.get("client_id") != self.client_id:
            return 400, {}, b"unknown client_id"
        redirect_uri = params.get("redirect_uri", "")
        if not redirect_uri.startswith(("http://", "https://")):
            return 400, {}, b"missing or invalid redirect_uri"

        def redirect(**query: str) -> tuple[int, dict[str, str], bytes]:
            if "state" in params:
                query["state"] = params["state"]
            parts = urlsplit(redirect_uri)
            joined = "&".join(p for p in (parts.query, urlencode(query)) if p)
            return 302, {"Location": urlunsplit(parts._replace(query=joined))}, b""

        if params.get("response_type") != "code":
            return redirect(error="unsupported_response_type")
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method", "plain" if challenge else None)
        if challenge and method != "S256":
            return redirect(error="invalid_request", error_description="only S256 PKCE")
        if not challenge and self.require_pkce:
            return redirect(error="invalid_request", error_description="PKCE required")
        user = self.approve_as or params.get("login_hint")
        if self.deny_consent or not user:
            return redirect(error="access_denied")
        code = "code-" + secrets.token_urlsafe(18)
        with self._lock:
            self._codes[code] = _Code(
                redirect_uri=redirect_uri,
                user=user,
                scope=params.get("scope", ""),
                challenge=challenge,
                expires_at=time.time() + 600,
            )
        return redirect(code=code)

    def _token(self, form: dict[str, str], basic: tuple[str, str] | None) -> tuple[int, dict]:
        """(status, JSON body) for POST /token."""
        with self._lock:
            self.token_requests += 1
            if form.get("grant_type") == "refresh_token":
                self.refresh_count += 1
        client_id, client_secret = basic or (form.get("client_id"), form.get("client_secret"))
        if client_id != self.client_id or client_secret != self.client_secret:
            return 401, {"error": "invalid_client"}
        grant = form.get("grant_type")
        with self._lock:
            if grant == "authorization_code":
                code = self._codes.pop(form.get("code", ""), None)  # single use, even if refused
                if (
                    code is None
                    or code.expires_at <= time.time()
                    or code.redirect_uri != form.get("redirect_uri")
                ):
                    return 400, {"error": "invalid_grant"}
                verifier = form.get("code_verifier")
                if code.challenge is not None and (
                    not verifier or _b64url_sha256(verifier) != code.challenge
                ):
                    return 400, {"error": "invalid_grant", "error_description": "PKCE"}
                refresh = "rt-" + secrets.token_urlsafe(24)
                self._refresh[refresh] = (code.user, code.scope)
                access = self._new_access_token(code.user, code.scope)
                return 200, self._token_response(access, refresh, code.scope)
            if grant == "refresh_token":
                refresh = form.get("refresh_token", "")
                if refresh not in self._refresh:
                    return 400, {"error": "invalid_grant"}
                user, scope = self._refresh[refresh]
                access = self._new_access_token(user, scope)
                return 200, self._token_response(access, refresh, scope)
        return 400, {"error": "unsupported_grant_type"}

    def _introspect(self, form: dict[str, str]) -> dict:
        token = form.get("token", "")
        user = self.active_user(token)
        if user is None:
            return {"active": False}
        with self._lock:
            info = self._access.get(token)
            scope, exp = (info.scope, int(info.expires_at)) if info else ("", 0)
        return {
            "active": True,
            "username": user,
            "scope": scope,
            "client_id": self.client_id,
            "token_type": "Bearer",
            "exp": exp,
        }


class _OAuthHandler(BaseHTTPRequestHandler):
    provider: OAuthProvider  # set on the subclass made in OAuthProvider.start()
    protocol_version = "HTTP/1.1"  # keep-alive: Dovecot's HTTP client reuses its connection
    timeout = 30  # an idle keep-alive connection frees its thread after this

    def log_message(self, format, *args):  # noqa: A002 - quiet: no request log on stderr
        pass

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _send_json(self, status: int, payload: dict) -> None:
        self._send(status, json.dumps(payload).encode(), {"Content-Type": "application/json"})

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        return {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}

    def _basic_auth(self) -> tuple[str, str] | None:
        header = self.headers.get("Authorization", "")
        if not header.lower().startswith("basic "):
            return None
        try:
            decoded = base64.b64decode(header[6:].strip()).decode("utf-8")
        except ValueError:
            return None
        client_id, _, secret = decoded.partition(":")
        # RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
        return unquote_plus(client_id), unquote_plus(secret)

    def do_GET(self):  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        if parts.path != "/authorize":
            self._send(404, b"not found")
            return
        params = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        status, headers, body = self.provider._authorize(params)
        self._send(status, body, headers)

    def do_POST(self):  # noqa: N802
        path = urlsplit(self.path).path
        form = self._form()
        if path == "/token":
            status, payload = self.provider._token(form, self._basic_auth())
            self._send_json(status, payload)
        elif path == "/introspect":
            self._send_json(200, self.provider._introspect(form))
        else:
            self._send(404, b"not found")


# --------------------------------------------------------------------------------------------------
# TLS
# --------------------------------------------------------------------------------------------------


class TestCertificate:
    """A throwaway certificate authority and a server certificate it signed for `names` (DNS
    names only: not for 127.0.0.1, so a client that checks the address instead of the name
    fails). `ca_path` is what a client trusts, e.g. SSL_CERT_FILE=ca_path for
    ssl.create_default_context()."""

    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, directory: Path, names: Sequence[str]):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self.names = tuple(names)
        self.cert_path = directory / "server.pem"
        self.key_path = directory / "server.key"
        self.ca_path = directory / "ca.pem"
        now = datetime.now(UTC)

        def build(subject, issuer, key, signer, *, ca: bool):
            builder = (
                x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
                .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(hours=1))
                .not_valid_after(now + timedelta(days=2))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            )
            if ca:
                builder = builder.add_extension(
                    x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                    critical=True,
                )
            else:
                builder = builder.add_extension(
                    x509.SubjectAlternativeName([x509.DNSName(n) for n in self.names]),
                    critical=False,
                )
            return builder.sign(signer, hashes.SHA256())

        ca_key, key = (
            ec.generate_private_key(ec.SECP256R1()),
            ec.generate_private_key(ec.SECP256R1()),
        )
        ca = build("Vigil test CA", "Vigil test CA", ca_key, ca_key, ca=True)
        server = build(self.names[0], "Vigil test CA", key, ca_key, ca=False)
        pem = serialization.Encoding.PEM
        self.ca_path.write_bytes(ca.public_bytes(pem))
        self.cert_path.write_bytes(server.public_bytes(pem))
        self.key_path.write_bytes(
            key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
        self.key_path.chmod(0o644)  # Dovecot's config reader runs as root or as us


# --------------------------------------------------------------------------------------------------
# Dovecot
# --------------------------------------------------------------------------------------------------


class DovecotError(RuntimeError):
    """Dovecot is missing, did not start, or a doveadm command failed."""


@dataclass
class ImapUser:
    """A mailbox user on the test Dovecot: `address` is also the IMAP login name."""

    name: str
    address: str
    password: str = field(repr=False)


def _find_binary(name: str) -> str | None:
    """Debian puts dovecot in /usr/sbin, which is not on a non-root PATH."""
    return shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.access(p, os.X_OK)), None
    )


class Dovecot:
    """Debian's Dovecot 2.3, run in the foreground (`dovecot -F -c <conf>`) as a child process,
    with everything under its own temporary directory: configuration, base_dir (sockets, pid
    file), state_dir, log and maildirs. IMAP only, plaintext, on 127.0.0.1 and a free port, so
    several instances (parallel pytest sessions, a benchmark) run side by side and next to a system
    Dovecot.

    Authentication (see `_config`): LOGIN/PLAIN with the password of `add_user` (a passwd-file
    passdb), XOAUTH2/OAUTHBEARER with an access token that the oauth2 passdb checks by POSTing it
    to `introspect_url` (an `OAuthProvider`). Users log in with their address, name@example.test.

    CONDSTORE: built into Dovecot's imap and advertised in CAPABILITY, but, as RFC 7162 §3.1
    requires, SELECT reports `[HIGHESTMODSEQ n]` only once the client has enabled CONDSTORE in
    the session: `ENABLE CONDSTORE` before selecting (imapclient: `client.enable("CONDSTORE")`,
    refused once a folder is selected), `SELECT ... (CONDSTORE)`, or any command using a modseq
    (FETCH MODSEQ, CHANGEDSINCE). Without it SELECT says nothing about modseqs. STATUS ...
    (HIGHESTMODSEQ) works without enabling. `client(user)` returns a plain session: the sync code
    under test must enable CONDSTORE itself.
    """

    def __init__(
        self,
        introspect_url: str | None = None,
        keep_dir: bool = False,
        *,
        mechanisms: str = "plain login xoauth2 oauthbearer",
        tls: TestCertificate | None = None,
    ):
        self.introspect_url = introspect_url
        self.keep_dir = keep_dir
        self.mechanisms = mechanisms
        self.tls = tls
        self.host = "127.0.0.1"
        self.port = 0
        self.tls_port = 0  # implicit TLS (imaps), with `tls` only
        self.users: dict[str, ImapUser] = {}  # by address
        self.startup_seconds = 0.0
        self.root: Path | None = None
        self._proc: subprocess.Popen | None = None
        self._users_lock = threading.Lock()
        # As root (make test, CI), mail processes run as Debian's `mail` user (uid 8): Dovecot
        # refuses uid 0. Otherwise Dovecot runs "rootless", every process as the current user.
        self.rootless = os.geteuid() != 0
        account = pwd.getpwuid(os.geteuid()) if self.rootless else pwd.getpwnam("mail")
        self.uid, self.gid = account.pw_uid, account.pw_gid

    # -- paths

    @property
    def conf_path(self) -> Path:
        return self._root / "dovecot.conf"

    @property
    def log_path(self) -> Path:
        return self._root / "dovecot.log"

    @property
    def _root(self) -> Path:
        if self.root is None:
            raise DovecotError("Dovecot is not started")
        return self.root

    def log(self, lines: int | None = None) -> str:
        """Dovecot's log (and anything it wrote on stderr before opening it), or its last lines."""
        text = ""
        for path in (self._root / "dovecot.stderr", self.log_path):
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:]) if lines else text

    # -- lifecycle

    def start(self) -> Dovecot:
        """Start Dovecot and wait (at most STARTUP_TIMEOUT) for its IMAP greeting. Retries with
        another port when the free port was taken between our probe and Dovecot's bind."""
        binary = _find_binary("dovecot")
        if binary is None:
            raise DovecotError(MISSING_DOVECOT)
        started = time.monotonic()
        # mkdtemp is 0700; the unprivileged login (dovenull) and mail (mail) processes must be able
        # to traverse it. A short prefix keeps base_dir's socket paths under 108 bytes.
        self.root = Path(tempfile.mkdtemp(prefix="vigil-dovecot-"))
        self.root.chmod(0o755)
        for sub in ("run", "state"):
            (self.root / sub).mkdir()
        for sub in ("mail", "home"):
            (self.root / sub).mkdir()
            if not self.rootless:
                os.chown(self.root / sub, self.uid, self.gid)
        (self.root / "users").mkdir()
        if self.introspect_url:
            (self.root / "oauth2.conf.ext").write_text(self._oauth2_config())
        for attempt in range(3):
            self.port = free_port()
            self.tls_port = free_port() if self.tls else 0
            self.conf_path.write_text(self._config())
            try:
                self._spawn(binary)
                break
            except DovecotError:
                if attempt < 2 and "Address already in use" in self.log():
                    continue
                self.stop()
                raise
        self.startup_seconds = time.monotonic() - started
        atexit.register(self.stop)
        return self

    def _spawn(self, binary: str) -> None:
        command = [binary, "-F", "-c", str(self.conf_path)]
        setpriv = _find_binary("setpriv")
        if setpriv:
            # Should this process die without stop() (kill -9, a hard pytest timeout), the kernel
            # sends Dovecot SIGTERM instead of leaving it running. Caveat of PR_SET_PDEATHSIG:
            # "die" means the *thread* that started it ends, so start Dovecot from the main thread
            # or one that outlives it.
            command = [setpriv, "--pdeathsig", "TERM", *command]
        with open(self._root / "dovecot.stderr", "ab") as err:
            self._proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=err,
                stderr=err,
                start_new_session=True,  # our own process group: stop() can kill the lot
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                self._proc = None
                raise DovecotError(f"dovecot exited at startup:\n{self.log(20)}")
            try:
                with socket.create_connection((self.host, self.port), timeout=1) as s:
                    s.settimeout(2)
                    if s.recv(200).startswith(b"* OK"):
                        return
            except OSError:
                pass
            time.sleep(0.05)
        self._terminate()
        raise DovecotError(
            f"dovecot did not greet on {self.host}:{self.port} within {STARTUP_TIMEOUT:.0f}s:\n"
            f"{self.log(20)}"
        )

    def _terminate(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()  # the master stops its children (shutdown_clients = yes) and exits
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)

    def stop(self) -> None:
        """Stop Dovecot (SIGTERM, then SIGKILL to its process group after 10 s) and remove its
        directory unless keep_dir. Safe to call twice."""
        atexit.unregister(self.stop)
        self._terminate()
        if self.root is not None and not self.keep_dir:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def __enter__(self) -> Dovecot:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- configuration

    def _config(self) -> str:
        root = self._root
        oauth2_passdb = ""
        if self.introspect_url:
            oauth2_passdb = f"""
passdb {{
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = {root}/oauth2.conf.ext
}}"""
        rootless = ""
        if self.rootless:  # wiki HowTo/Rootless: one user for everything, no chroot
            me, group = pwd.getpwuid(self.uid).pw_name, grp.getgrgid(self.gid).gr_name
            rootless = f"""
default_internal_user = {me}
default_internal_group = {group}
default_login_user = {me}
service imap-login {{
  chroot =
}}
service anvil {{
  chroot =
}}
"""
        return f"""# Written by tests/imapserver.py; nothing in /etc/dovecot is read.
{rootless}
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = vigil-test-{root.name}
log_path = {root}/dovecot.log
info_log_path = {root}/dovecot.log
auth_verbose = yes
{self._tls_config()}
disable_plaintext_auth = no
login_trusted_networks = 127.0.0.0/8
# Tests log in with bad credentials on purpose: refuse within 0.5 s (the auth process's failure
# timer still ticks every 500 ms; `nodelay` in override_fields does not shorten it) instead of 2 s.
auth_failure_delay = 0
auth_mechanisms = {self.mechanisms}
auth_username_chars = abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ01234567890.-_@+
mail_location = maildir:{root}/mail/%u
mail_uid = {self.uid}
mail_gid = {self.gid}
first_valid_uid = {self.uid}
last_valid_uid = {self.uid}
first_valid_gid = {self.gid}
last_valid_gid = {self.gid}
# The data is throwaway: no fsync makes APPEND several times faster.
mail_fsync = never

# Passwords of add_user(), PLAIN, one passwd-file per user: Dovecot stat()s a passwd-file at most
# once per second, so a user appended to a shared file could stay unknown for up to a second,
# while a file path it has never seen is read at once. Restricted to the password mechanisms, so
# a token is never compared with a password, nor a password sent to the OAuth provider.
passdb {{
  driver = passwd-file
  mechanisms = plain login
  args = scheme=PLAIN username_format=%u {root}/users/%u
}}
{oauth2_passdb}
userdb {{
  driver = static
  args = uid={self.uid} gid={self.gid} home={root}/home/%u allow_all_users=yes
}}

namespace inbox {{
  inbox = yes
  separator = /
  mailbox Sent {{
    special_use = \\Sent
    auto = subscribe
  }}
  mailbox Drafts {{
    special_use = \\Drafts
    auto = subscribe
  }}
}}

protocol imap {{
  mail_max_userip_connections = 1000
}}

service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener imaps {{
    address = 127.0.0.1
    port = {self.tls_port}
    ssl = yes
  }}
}}
service imap {{
  process_limit = 1000
}}
# No auth penalty: anvil would delay each failed login from 127.0.0.1 by 2, 4, 8, then 15 s
# (login_trusted_networks does not exempt it in 2.3), which tests of refused tokens hit at once.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
"""

    def _tls_config(self) -> str:
        """STARTTLS on the IMAP port and implicit TLS on `tls_port`, with the test certificate."""
        if self.tls is None:
            return "ssl = no"
        return f"ssl = yes\nssl_cert = <{self.tls.cert_path}\nssl_key = <{self.tls.key_path}"

    def _oauth2_config(self) -> str:
        """Dovecot's oauth2 passdb: no tokeninfo URL, so every token is checked by RFC 7662
        introspection (POST token=...); `active` must be true and `username` is the login."""
        return f"""introspection_url = {self.introspect_url}
introspection_mode = post
force_introspection = yes
username_attribute = username
username_format = %u
active_attribute = active
active_value = true
timeout_msecs = 10000
"""

    # -- users

    def _address(self, user: str) -> str:
        return user if "@" in user else f"{user}@{DOMAIN}"

    def add_user(self, name: str, password: str | None = None) -> str:
        """Create a mailbox user and return its address, `name@example.test`, which is also its
        IMAP login (a name that already contains `@` is used as is). Every method taking a `user`
        accepts the name or the address. Works while Dovecot runs (one passwd-file per user, read
        on first use); the maildir appears on first login. The password is random if not given."""
        if not re.fullmatch(r"[A-Za-z0-9._+-]+(@[A-Za-z0-9.-]+)?", name):
            raise ValueError(f"unusable IMAP user name: {name!r}")
        password = password or secrets.token_urlsafe(12)
        if re.search(r"[:\r\n]", password):
            raise ValueError("a password may not contain ':' or a line break (passwd-file)")
        address = self._address(name)
        with self._users_lock:
            if address in self.users:
                raise ValueError(f"user {address} exists")
            self.users[address] = ImapUser(name.split("@")[0], address, password)
            path = self._root / "users" / address
            path.write_text(f"{address}:{{PLAIN}}{password}\n", encoding="utf-8")
        return address

    def user(self, user: str) -> ImapUser:
        return self.users[self._address(user)]

    def client(self, user: str, timeout: float = IMAP_TIMEOUT) -> imapclient.IMAPClient:
        """An imapclient session logged in with the user's password (close it, or use `with`);
        AUTHENTICATE PLAIN for a password that LOGIN cannot carry (not ASCII)."""
        account = self.user(user)
        client = imapclient.IMAPClient(self.host, self.port, ssl=False, timeout=timeout)
        try:
            if account.password.isascii():
                client.login(account.address, account.password)
            else:
                client.plain_login(account.address, account.password)
        except Exception:
            client.shutdown()
            raise
        return client

    # -- messages

    def append(
        self,
        user: str,
        folder: str,
        raw: bytes,
        flags: Sequence[str] = (),
        msg_time: datetime | None = None,
    ) -> int:
        """APPEND one message; returns its UID (from the UIDPLUS APPENDUID response)."""
        with self.client(user) as imap:
            response = imap.append(folder, raw, flags=flags, msg_time=msg_time)
        return _appenduids(response)[0]

    def append_many(
        self,
        user: str,
        folder: str,
        raws: Iterable[bytes | tuple],
        batch: int = 500,
    ) -> list[int]:
        """Append many messages over one connection with MULTIAPPEND (RFC 3502) and LITERAL+,
        `batch` messages per APPEND command, so there is no round trip per message. Each item is
        raw bytes, or a tuple (raw, flags) or (raw, flags, msg_time). Returns the UIDs in order.

        About 0.2 s per 1,000 small messages, 2 s for 20,000: 20 times faster than one APPEND
        per message (a round trip each, for the literal's continuation), and faster than writing
        maildir files from Python and letting Dovecot index them (3 s for 20,000), which is why
        this module offers no such shortcut."""
        uids: list[int] = []
        with self.client(user, timeout=300) as imap:
            chunk: list[dict] = []
            for item in raws:
                raw, flags, msg_time = _message_item(item)
                entry: dict = {"msg": raw}
                if flags:
                    entry["flags"] = flags
                if msg_time is not None:
                    entry["date"] = msg_time
                chunk.append(entry)
                if len(chunk) >= batch:
                    uids += _appenduids(imap.multiappend(folder, chunk))
                    chunk = []
            if chunk:
                uids += _appenduids(imap.multiappend(folder, chunk))
        return uids

    def flags(self, user: str, folder: str, uid: int) -> tuple[str, ...]:
        """The message's stored flags as strings, e.g. ('\\\\Seen',), read without changing them.
        \\Recent is left out: it belongs to the first session that sees a message, not to it."""
        with self.client(user) as imap:
            imap.select_folder(folder, readonly=True)
            data = imap.fetch([uid], ["FLAGS"])
        if uid not in data:
            raise KeyError(f"no UID {uid} in {folder} of {user}")
        flags = (f.decode() if isinstance(f, bytes) else f for f in data[uid][b"FLAGS"])
        return tuple(f for f in flags if f != "\\Recent")

    def status(self, user: str, folder: str) -> dict[str, int]:
        """STATUS of a folder: MESSAGES, UIDNEXT, UIDVALIDITY, HIGHESTMODSEQ (str keys)."""
        with self.client(user) as imap:
            data = imap.folder_status(
                folder, ["MESSAGES", "UIDNEXT", "UIDVALIDITY", "HIGHESTMODSEQ"]
            )
        return {k.decode(): v for k, v in data.items()}

    def reset_uidvalidity(self, user: str, folder: str, renumber: bool = True) -> int:
        """Make the server hand out a new UIDVALIDITY for the folder, keeping its messages (same
        content, flags and INTERNALDATE); returns the new UIDVALIDITY, which is the old one + 1.

        With `renumber` (default) the messages also get new UIDs, as after a real server rebuild,
        so a client that kept using its old UIDs finds other messages or none: they are COPYed
        into the folder itself and the originals expunged (UIDs continue from UIDNEXT). Then
        `doveadm mailbox update --uid-validity` changes the UIDVALIDITY (the supported way: no
        index files are deleted behind Dovecot's back). A session that has the folder selected
        meanwhile is disconnected by Dovecot at its next command ("* BYE IMAP session state is
        inconsistent, please relogin."); a new session sees the new UIDVALIDITY on SELECT."""
        address = self._address(user)
        before = self.status(address, folder)
        if renumber and before["MESSAGES"]:
            old = f"1:{before['UIDNEXT'] - 1}"  # a UID range, not a list: 20,000 UIDs are too
            with self.client(address) as imap:  # long a command line for Dovecot
                imap.select_folder(folder)
                imap.copy(old, folder)
                imap.delete_messages(old, silent=True)
                imap.uid_expunge(old)
        new = before["UIDVALIDITY"] + 1
        self.doveadm("mailbox", "update", "-u", address, "--uid-validity", str(new), folder)
        after = self.status(address, folder)
        if after["UIDVALIDITY"] != new or after["MESSAGES"] != before["MESSAGES"]:
            raise DovecotError(f"reset_uidvalidity({folder}) did not take: {before} -> {after}")
        return new

    def doveadm(self, *args: str) -> str:
        """Run `doveadm -c <our conf> ...` against this instance; returns stdout."""
        binary = _find_binary("doveadm")
        if binary is None:
            raise DovecotError("doveadm is missing (package dovecot-core)")
        done = subprocess.run(
            [binary, "-c", str(self.conf_path), *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if done.returncode != 0:
            raise DovecotError(f"doveadm {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout


def _message_item(item: bytes | tuple) -> tuple[bytes, tuple[str, ...], datetime | None]:
    """raw | (raw, flags) | (raw, flags, msg_time) -> (raw, flags, msg_time)."""
    if isinstance(item, bytes | bytearray):
        return bytes(item), (), None
    raw, flags, msg_time = (*item, (), None, None)[:3] if len(item) < 2 else (*item, None)[:3]
    return raw, tuple(flags or ()), msg_time


def _appenduids(response: bytes | str) -> list[int]:
    """UIDs from an APPEND response's `[APPENDUID <uidvalidity> <uid-set>]` (RFC 4315)."""
    text = response.decode() if isinstance(response, bytes) else str(response)
    match = re.search(r"APPENDUID \d+ ([\d:,]+)", text)
    if not match:
        raise DovecotError(f"no APPENDUID in APPEND response: {text!r}")
    uids: list[int] = []
    for part in match.group(1).split(","):
        first, _, last = part.partition(":")
        uids.extend(range(int(first), int(last or first) + 1))
    return uids


# --------------------------------------------------------------------------------------------------
# pytest fixtures (imported by tests/mailsync/conftest.py and test modules)
# --------------------------------------------------------------------------------------------------

_user_counter = iter(range(1, 1_000_000))


@pytest.fixture(scope="session")
def oauth_provider():
    """One OAuth provider for the session. `imap_user` puts back the controls a test may change
    (approve_as, deny_consent, expires_in); tokens are per user, so tests do not collide."""
    provider = OAuthProvider().start()
    yield provider
    provider.stop()


@pytest.fixture(scope="session")
def dovecot(oauth_provider):
    """One Dovecot for the session, checking tokens with `oauth_provider`. Tests isolate
    themselves by using their own `imap_user`."""
    server = Dovecot(introspect_url=oauth_provider.introspect_url)
    try:
        server.start()
    except DovecotError as error:
        pytest.fail(str(error), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dovecot_tls(tmp_path_factory):
    """A Dovecot speaking TLS (STARTTLS on `port`, implicit TLS on `tls_port`) with a
    certificate for imap.vigil.test only, signed by the CA at `tls.ca_path`. Password logins
    only; users are added with `add_user`."""
    tls = TestCertificate(tmp_path_factory.mktemp("tls"), ["imap.vigil.test"])
    server = Dovecot(mechanisms="plain login", tls=tls)
    try:
        server.start()
    except DovecotError as error:
        pytest.fail(str(error), pytrace=False)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def dovecot_without_plain():
    """A Dovecot that offers no AUTHENTICATE PLAIN, only SASL LOGIN (and so, as Dovecot does,
    LOGINDISABLED for the IMAP LOGIN command)."""
    server = Dovecot(mechanisms="login")
    try:
        server.start()
    except DovecotError as error:
        pytest.fail(str(error), pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def imap_user(dovecot, oauth_provider):
    """A fresh mailbox user for this test (`.name`, `.address` = IMAP login, `.password`).
    Afterwards the session's OAuth provider gets its default controls back."""
    name = f"user{next(_user_counter)}-{uuid.uuid4().hex[:6]}"
    address = dovecot.add_user(name)
    yield dovecot.user(address)
    oauth_provider.approve_as = None
    oauth_provider.deny_consent = False
    oauth_provider.expires_in = 3600
