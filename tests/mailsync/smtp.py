"""A real SMTP server (aiosmtpd) for delivery tests."""

import socket
from email import message_from_bytes


class Recorder:
    """A real SMTP server's handler: keeps what it receives, refuses some recipients."""

    def __init__(self):
        self.received = []
        self.envelopes = []  # the RCPT TO addresses of each message, bcc included

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("nobody@"):
            return "550 5.1.1 No such user"
        if address.startswith("busy@"):
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(message_from_bytes(envelope.original_content))
        self.envelopes.append(sorted(envelope.rcpt_tos))
        return "250 Message accepted"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
