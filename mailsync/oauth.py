"""Connecting a mailbox with OAuth 2.0 (authorization code with PKCE) and keeping its access
token fresh for XOAUTH2. Tokens are stored encrypted (mailsync.crypto) and never appear in an
exception message or a log line: those name the mailbox id and the provider only. Functions
that handle a token are marked sensitive_variables(), so Django's error reports hide every local
of theirs and of what they call (Django hides locals by that marking, not by their names)."""

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import requests
from authlib.common.security import generate_token
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from mailsync import crypto
from mailsync.models import Mailbox
from notifications.services import close_notices, notify

logger = logging.getLogger(__name__)

SESSION_KEY = "mailsync_oauth"
PENDING_LIMIT = 5  # connections a user may have under way at once (browser tabs)
PENDING_TTL = timedelta(minutes=30)
EARLY = timedelta(seconds=60)  # an access token this close to its expiry is refreshed first
# RFC 6749 leaves expires_in optional; Google and Microsoft issue tokens for an hour.
DEFAULT_LIFETIME = 3600
# The error codes of RFC 6749 (§4.1.2.1, §5.2): the only part of a provider's answer we repeat.
ERROR_CODES = {
    "access_denied",
    "invalid_client",
    "invalid_grant",
    "invalid_request",
    "invalid_scope",
    "server_error",
    "temporarily_unavailable",
    "unauthorized_client",
    "unsupported_grant_type",
    "unsupported_response_type",
}


class ConnectFailed(Exception):
    """Connecting a mailbox did not finish; the message is for its owner."""


class GrantRevoked(Exception):
    """The provider refuses the refresh token (revoked, expired, password changed): only the
    owner can fix it, by connecting again. Permanent."""


class ProviderUnavailable(Exception):
    """The token endpoint could not be reached or failed. Transient: try again later."""


def callback_url() -> str:
    return settings.VIGIL_SITE_URL + reverse("mailsync:oauth_callback")


def reconnect_source(mailbox: Mailbox) -> str:
    """The start of the source of every "reconnect" notice about `mailbox`."""
    return f"mailbox-reconnect:{mailbox.pk}:"


def reconnected(mailbox: Mailbox, now: datetime) -> None:
    """The owner connected the mailbox again: its "reconnect" notices are done."""
    close_notices(mailbox.owner_id, reconnect_source(mailbox), now)


def reconnect_url(mailbox: Mailbox) -> str:
    return reverse("mailsync:mailbox_connect", args=[mailbox.pk])


@sensitive_variables()
def start(request: HttpRequest, mailbox: Mailbox) -> str:
    """The provider's authorization URL for `mailbox`; the state and PKCE verifier wait in the
    user's session for `finish`."""
    if mailbox.auth != Mailbox.Auth.OAUTH2:
        raise ConnectFailed("This mailbox signs in with a password; there is nothing to connect.")
    config = _oauth_config(mailbox.provider)
    if config is None:
        raise ConnectFailed(f"{mailbox.get_provider_display()} sign-in is not set up here.")
    state, code_verifier = generate_token(48), generate_token(48)
    with _client(config) as client:
        url, _ = client.create_authorization_url(
            config["authorize_url"],
            state=state,
            code_verifier=code_verifier,
            login_hint=mailbox.address,
            **config.get("extra_authorize_params", {}),
        )
    pending = request.session.get(SESSION_KEY, {})
    pending[state] = {
        "mailbox": mailbox.pk,
        "user": request.user.pk,
        "verifier": code_verifier,
        "started": timezone.now().timestamp(),
    }
    request.session[SESSION_KEY] = dict(list(pending.items())[-PENDING_LIMIT:])
    return url


@sensitive_variables()  # hides the code, verifier and tokens in this and every frame below
def finish(request: HttpRequest) -> Mailbox:
    """Complete a connection the provider sent the user back from: the state must be one this
    session started (once), for a mailbox of this user."""
    pending = _take_pending(request)
    error = request.GET.get("error", "")
    if error:
        if error == "access_denied":
            raise ConnectFailed("You did not give Vigil access to the mailbox.")
        raise ConnectFailed(f"The provider refused the connection ({_known(error)}).")
    mailbox = Mailbox.objects.filter(pk=pending["mailbox"], owner_id=request.user.pk).first()
    config = _oauth_config(mailbox.provider) if mailbox else None
    code = request.GET.get("code", "")
    if mailbox is None or config is None or not code:
        raise ConnectFailed("The connection could not be completed; connect again.")
    now = timezone.now()
    try:
        with _client(config) as client:
            token = _call_token_endpoint(
                lambda: client.fetch_token(
                    config["token_url"],
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=pending["verifier"],
                ),
                mailbox,
            )
    except (GrantRevoked, ProviderUnavailable) as failure:
        raise ConnectFailed(f"{failure}; connect again.") from None
    refresh_token, new_access_token = token.get("refresh_token"), token.get("access_token")
    if not (refresh_token and new_access_token):
        raise ConnectFailed(
            f"{mailbox.get_provider_display()} gave no lasting access to the mailbox; "
            "connect again."
        )
    connected = {
        "secret": crypto.encrypt(refresh_token),
        "access_token": crypto.encrypt(new_access_token),
        "access_token_expires_at": _expiry(token, now),
        "status": Mailbox.Status.ACTIVE,
        "attempts": 0,
        "last_error": "",
        "next_sync_at": now,
    }
    if not Mailbox.objects.filter(pk=mailbox.pk, owner_id=request.user.pk).update(**connected):
        raise ConnectFailed("The mailbox was removed meanwhile.")
    for field, value in connected.items():
        setattr(mailbox, field, value)
    reconnected(mailbox, now)
    logger.info("mailbox %s: connected with %s", mailbox.pk, mailbox.provider)
    return mailbox


@sensitive_variables()
def access_token(mailbox: Mailbox, now: datetime, *, force_refresh: bool = False) -> str:
    """An access token for XOAUTH2, valid for at least another minute: the stored one, or a new
    one from the provider (stored, with the refresh token if the provider rotated it).
    Raises GrantRevoked (the owner must reconnect), ProviderUnavailable (try later) or
    crypto.SecretUnreadable (the refresh token's key is gone)."""
    if mailbox.auth != Mailbox.Auth.OAUTH2:
        raise ValueError(f"mailbox {mailbox.pk} signs in with a password, not OAuth")
    expires_at = mailbox.access_token_expires_at
    if not force_refresh and mailbox.access_token and expires_at and expires_at - EARLY >= now:
        try:
            return crypto.decrypt(mailbox.access_token)
        except crypto.SecretUnreadable:
            pass  # its key was dropped: refresh it
    config = _oauth_config(mailbox.provider)
    if config is None:
        raise ProviderUnavailable(f"{mailbox.get_provider_display()} sign-in is not set up here")
    used_secret = bytes(mailbox.secret)
    refresh_token = crypto.decrypt(used_secret)
    with _client(config) as client:
        token = _call_token_endpoint(
            lambda: client.refresh_token(config["token_url"], refresh_token=refresh_token),
            mailbox,
        )
    new_access_token = token["access_token"]
    changes: dict[str, Any] = {
        "access_token": crypto.encrypt(new_access_token),
        "access_token_expires_at": _expiry(token, now),
    }
    rotated_token = token.get("refresh_token")  # Authlib repeats the old one if none came
    if rotated_token and rotated_token != refresh_token:
        changes["secret"] = crypto.encrypt(rotated_token)
    _store_refreshed(mailbox, used_secret, refresh_token, changes)
    logger.info("mailbox %s: refreshed its %s access token", mailbox.pk, mailbox.provider)
    return new_access_token


def needs_reconnect(mailbox: Mailbox, now: datetime, reason: str) -> bool:
    """Stop using `mailbox` until its owner connects it again, and tell them once: only the
    call that moves it into RECONNECT notifies, keyed by that moment (one notice per episode).
    Returns whether this call began the episode."""
    with transaction.atomic():
        began = (
            Mailbox.objects.filter(pk=mailbox.pk)
            .exclude(status=Mailbox.Status.RECONNECT)
            .update(
                status=Mailbox.Status.RECONNECT,
                last_error=reason,
                access_token=b"",
                access_token_expires_at=None,
            )
        )
        if began:
            notify(
                [mailbox.owner_id],
                source=f"{reconnect_source(mailbox)}{int(now.timestamp())}",
                title=f"Reconnect your mailbox {mailbox.address}: {reason}",
                link=reconnect_url(mailbox),
                at=now,
            )
    if began:
        mailbox.status, mailbox.last_error = Mailbox.Status.RECONNECT, reason
        mailbox.access_token, mailbox.access_token_expires_at = b"", None
        logger.info("mailbox %s: needs reconnecting (%s)", mailbox.pk, reason)
    return bool(began)


def _oauth_config(provider: str) -> dict[str, Any] | None:
    config = settings.VIGIL_MAIL_PROVIDERS.get(provider)
    return config if config and config.get("client_id") else None


def _client(config: dict[str, Any]) -> OAuth2Session:
    client = OAuth2Session(
        client_id=config["client_id"],
        client_secret=config.get("client_secret") or None,
        scope=config["scope"],
        redirect_uri=callback_url(),
        code_challenge_method="S256",
        default_timeout=settings.VIGIL_MAILSYNC_SOCKET_TIMEOUT,
    )
    client.register_compliance_hook("access_token_response", _refuse_errors)
    client.register_compliance_hook("refresh_token_response", _refuse_errors)
    return client


def _refuse_errors(response: requests.Response) -> requests.Response:
    """Sort the token endpoint's refusals by their status before Authlib parses the answer."""
    if response.status_code in (400, 401):
        raise GrantRevoked(_error_code(response))
    if response.status_code >= 300:
        raise ProviderUnavailable(f"HTTP {response.status_code}")
    return response


def _call_token_endpoint(call: Callable[[], dict[str, Any]], mailbox: Mailbox) -> dict[str, Any]:
    """The token endpoint's answer, or GrantRevoked / ProviderUnavailable with a message that
    names the provider and an RFC 6749 error code at most, never what was sent or received."""
    label = mailbox.get_provider_display()
    failure: Exception
    try:
        token = call()
    except GrantRevoked as refusal:
        failure = GrantRevoked(f"{label} refused Vigil's access ({refusal})")
    except OAuthError:  # an error in a 2xx answer
        failure = GrantRevoked(f"{label} refused Vigil's access")
    except ProviderUnavailable as status:
        failure = ProviderUnavailable(f"{label} answered {status}")
    except requests.RequestException as error:
        failure = ProviderUnavailable(f"{label} could not be reached ({type(error).__name__})")
    except ValueError:
        failure = ProviderUnavailable(f"{label} answered without a token")
    else:
        if token.get("access_token"):
            return token
        failure = ProviderUnavailable(f"{label} answered without an access token")
    logger.warning("mailbox %s: %s token request failed: %s", mailbox.pk, mailbox.provider, failure)
    raise failure


def _store_refreshed(
    mailbox: Mailbox, used_secret: bytes, refresh_token: str, changes: dict[str, Any]
) -> None:
    """Store a refreshed token only while the mailbox still holds the grant it came from: a
    reconnect or removal meanwhile wins. A key rotation meanwhile re-encrypted the same grant,
    so that is tried once more."""
    stored = Mailbox.objects.filter(pk=mailbox.pk, secret=used_secret).update(**changes)
    if not stored:
        current = Mailbox.objects.filter(pk=mailbox.pk).values_list("secret", flat=True).first()
        if current and _opens_to(bytes(current), refresh_token):
            stored = Mailbox.objects.filter(pk=mailbox.pk, secret=current).update(**changes)
    if not stored:
        logger.info("mailbox %s: reconnected or removed meanwhile; token not stored", mailbox.pk)
        return
    for field, value in changes.items():
        setattr(mailbox, field, value)


@sensitive_variables()
def _opens_to(value: bytes, refresh_token: str) -> bool:
    try:
        return crypto.decrypt(value) == refresh_token
    except crypto.SecretUnreadable:
        return False


def _take_pending(request: HttpRequest) -> dict[str, Any]:
    """The connection this callback's state names, removed from the session (single use)."""
    pending = request.session.get(SESSION_KEY, {})
    started = pending.pop(request.GET.get("state", ""), None)
    request.session[SESSION_KEY] = pending
    age = timezone.now().timestamp() - started["started"] if started else None
    fresh = age is not None and age < PENDING_TTL.total_seconds()
    if not fresh or started["user"] != request.user.pk:
        raise ConnectFailed(
            "This connection link is not valid (expired, already used or from another "
            "session); connect again."
        )
    return started


def _expiry(token: dict[str, Any], now: datetime) -> datetime:
    try:
        lifetime = int(token.get("expires_in") or DEFAULT_LIFETIME)
    except (TypeError, ValueError):
        lifetime = DEFAULT_LIFETIME
    return now + timedelta(seconds=lifetime)


def _error_code(response: requests.Response) -> str:
    try:
        error = response.json().get("error", "")
    except (ValueError, AttributeError):
        error = ""
    return _known(error) if error else f"HTTP {response.status_code}"


def _known(error: str) -> str:
    return error if error in ERROR_CODES else "unknown error"
