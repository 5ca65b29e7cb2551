from datetime import datetime

from django import forms
from django.conf import settings
from django.db import IntegrityError, transaction

from mailsync import crypto, hosts, oauth
from mailsync.models import Mailbox

IMAP = Mailbox.Provider.IMAP
# Without TLS a password crosses the network in clear: only a server on this machine may do that.
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}
PORT_ERROR = "Give a port between 1 and 65535 (993 for SSL/TLS, 143 for STARTTLS)."
DUPLICATE = "You have already added this mailbox."


def oauth_providers() -> list[tuple[str, str]]:
    """The providers users can connect with OAuth here: those with a client id."""
    return [
        (provider, config["label"])
        for provider, config in settings.VIGIL_MAIL_PROVIDERS.items()
        if config.get("client_id")
    ]


class MailboxForm(forms.ModelForm):
    """A mailbox to add: an OAuth provider's (connected next, on the provider's page) or any
    IMAP server's, with its password."""

    imap_port = forms.IntegerField(
        label="Port",
        required=False,
        initial=993,
        min_value=1,
        max_value=65535,
        error_messages={k: PORT_ERROR for k in ("invalid", "min_value", "max_value")},
    )
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        required=False,
        strip=False,
        help_text="Stored encrypted; never shown again.",
    )

    class Meta:
        model = Mailbox
        fields = ("provider", "address", "imap_host", "imap_port", "imap_security", "username")
        labels = {
            "address": "Email address",
            "imap_host": "IMAP server",
            "imap_security": "Security",
            "username": "Login",
        }
        help_texts = {"username": "Leave empty if it is the email address."}

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.fields["provider"].choices = [*oauth_providers(), (IMAP, IMAP.label)]
        self.fields["provider"].initial = self.fields["provider"].choices[0][0]
        for name in ("imap_host", "imap_security", "username"):
            self.fields[name].required = False
        self.fields["imap_security"].choices = Mailbox.Security.choices

    def clean_address(self) -> str:
        address = self.cleaned_data["address"]
        if Mailbox.objects.filter(owner=self.owner, address__iexact=address).exists():
            raise forms.ValidationError(DUPLICATE, code="duplicate")
        return address

    def clean_imap_host(self) -> str:
        return self.cleaned_data["imap_host"].strip().removeprefix("[").removesuffix("]")

    def clean(self):
        data = super().clean()
        if data.get("provider") != IMAP:
            return data
        host = data.get("imap_host", "")
        name = hosts.normalized(host)
        if data.get("imap_port") is None and "imap_port" not in self.errors:
            self.add_error("imap_port", PORT_ERROR)
        if not host:
            self.add_error("imap_host", "Give the IMAP server's host name, e.g. imap.example.com.")
        elif name is None:
            self.add_error(
                "imap_host",
                "Give only the server's host name or IP address, e.g. imap.example.com "
                "(no https://, port or spaces).",
            )
        else:
            host = data["imap_host"] = name
            self._check_reachable(name, data.get("imap_port") or 993)
        security = data.get("imap_security") or Mailbox.Security.SSL
        data["imap_security"] = security
        if security == Mailbox.Security.NONE and host and host.lower() not in LOCAL_HOSTS:
            self.add_error(
                "imap_security",
                "Without SSL/TLS or STARTTLS the password would cross the network in clear "
                "text: choose SSL/TLS or STARTTLS (None is only for a server on this machine).",
            )
        if not data.get("password"):
            self.add_error("password", "Give the mailbox's password (or an app password).")
        return data

    def _check_reachable(self, host: str, port: int) -> None:
        """Refuse now what the worker would refuse (it checks again on every connection: a
        name can resolve elsewhere later)."""
        if settings.VIGIL_MAILSYNC_PRIVATE_HOSTS:
            return
        try:
            hosts.resolve(host, port)
        except hosts.Unreachable:
            self.add_error("imap_host", hosts.UNREACHABLE)

    def create(self, now: datetime) -> Mailbox | None:
        """Save the mailbox: an IMAP one is ready to sync, an OAuth one waits to be connected.
        None (with an error on the address) if the same address was added meanwhile."""
        mailbox = super().save(commit=False)
        mailbox.owner, mailbox.created_at = self.owner, now
        if mailbox.provider == IMAP:
            mailbox.auth = Mailbox.Auth.PASSWORD
            mailbox.username = mailbox.username or mailbox.address
            mailbox.secret = crypto.encrypt(self.cleaned_data["password"])
            mailbox.status, mailbox.next_sync_at = Mailbox.Status.ACTIVE, now
        else:
            config = settings.VIGIL_MAIL_PROVIDERS[mailbox.provider]
            mailbox.auth = Mailbox.Auth.OAUTH2
            mailbox.username = mailbox.address
            mailbox.imap_host, mailbox.imap_port = config["imap_host"], config["imap_port"]
            mailbox.imap_security = config["imap_security"]
            mailbox.status = Mailbox.Status.PENDING
        try:
            with transaction.atomic():
                mailbox.save()
        except IntegrityError:
            self.add_error("address", DUPLICATE)
            return None
        return mailbox


class PasswordForm(forms.Form):
    """A new password for an IMAP mailbox that stopped accepting the old one."""

    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False),
        strip=False,
        error_messages={"required": "Give the mailbox's password (or an app password)."},
    )

    def save(self, mailbox: Mailbox, now: datetime) -> None:
        mailbox.secret = crypto.encrypt(self.cleaned_data["password"])
        mailbox.status, mailbox.attempts, mailbox.last_error = Mailbox.Status.ACTIVE, 0, ""
        mailbox.next_sync_at = now
        mailbox.save(update_fields=["secret", "status", "attempts", "last_error", "next_sync_at"])
        oauth.reconnected(mailbox, now)
