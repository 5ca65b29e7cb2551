"""The embedded default's email backend: every message becomes one .eml file under var/mail/,
which any mail client opens, so a person can read exactly what Vigil would have sent."""

import re
import uuid
from pathlib import Path

from django.conf import settings
from django.core.mail.backends.base import BaseEmailBackend
from django.utils import timezone


class EmlDirectoryBackend(BaseEmailBackend):
    def __init__(self, file_path=None, **kwargs):
        super().__init__(**kwargs)
        self.directory = Path(file_path or settings.EMAIL_FILE_PATH)

    def send_messages(self, email_messages):
        self.directory.mkdir(parents=True, exist_ok=True)
        for message in email_messages:
            mime = message.message()
            stamp = timezone.now().strftime("%Y%m%dT%H%M%S")
            tag = re.sub(r"[^A-Za-z0-9.@-]", "", mime["Message-ID"] or "") or uuid.uuid4().hex
            final = self.directory / f"{stamp}-{tag}.eml"
            partial = final.with_suffix(".part")
            partial.write_bytes(mime.as_bytes(linesep="\r\n"))
            partial.rename(final)  # readers never see half a message
        return len(email_messages)
