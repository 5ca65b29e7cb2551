from django.core.management.base import BaseCommand

from mailsync import crypto


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored mailbox secret (refresh tokens, access tokens, IMAP passwords) "
        "with the newest key of VIGIL_MAILBOX_KEYS. To replace a key: 1. make a new one (python "
        "-c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'); "
        "2. put it first in VIGIL_MAILBOX_KEYS, keeping the old one after it, and restart every "
        "web and worker process; 3. run this command; 4. drop the old key from "
        "VIGIL_MAILBOX_KEYS and restart again. Running it twice is harmless."
    )

    def handle(self, *args, **options):
        rotated = crypto.rotate()
        self.stdout.write(f"re-encrypted {rotated} mailbox secrets")
