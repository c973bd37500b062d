"""``python -m alerts_web <command>``: Django's manage.py without a file at the repo root."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alerts_web.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(["python -m alerts_web", *sys.argv[1:]])


if __name__ == "__main__":
    main()
