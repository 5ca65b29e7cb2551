"""Test settings: the real PostgreSQL and Redis on localhost unless the environment says
otherwise."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/vigil")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15")

from crm.settings import *  # noqa: E402,F403

# Each test process its own cache, emptied before every test (tests/conftest.py): a shared Redis
# would carry one test's cached figures into another's, or into a suite running beside it.
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
# The test IMAP server (Dovecot) listens on 127.0.0.1.
VIGIL_MAILSYNC_PRIVATE_HOSTS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
