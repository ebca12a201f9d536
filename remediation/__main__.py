"""`bin/nautilus-remediation HELPER [TARGET] [--apply] [--yes] [--inventory=PATH] [--bundle-dir=DIR]` runs this; see cli.py."""
import sys

from .cli import main

sys.exit(main())
