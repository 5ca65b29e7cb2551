"""The web workers' application (crm.wsgi, what gunicorn serves) freezes the objects of its
start-up and collects garbage once a few pages rather than twice a page."""

import subprocess
import sys

from django.conf import settings


def test_the_wsgi_application_freezes_its_start_up_and_collects_less_often():
    program = "import gc, crm.wsgi; print(gc.get_freeze_count(), *gc.get_threshold())"
    out = subprocess.run(  # noqa: S603 - this interpreter, our own module
        [sys.executable, "-c", program],
        cwd=settings.BASE_DIR,
        env={"DJANGO_SETTINGS_MODULE": "crm.settings", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    frozen, first, *_ = map(int, out)
    assert frozen > 10_000  # Django and the apps, at least
    assert first == 20_000
