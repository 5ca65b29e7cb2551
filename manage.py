#!/usr/bin/env python
"""Django's command-line utility for Vigil."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "crm.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        execute_from_command_line(sys.argv)
    except ImproperlyConfigured as exc:
        # A bad environment variable is the operator's mistake, not a crash: one line, exit 2.
        sys.stderr.write(f"vigil: configuration error: {exc}\n")
        sys.exit(2)


if __name__ == "__main__":
    main()
