"""`python -m remediation HELPER [TARGET] [--apply] [--yes] [--inventory PATH] [--bundle-dir DIR]`; see cli.py."""
import sys

from .cli import main

sys.exit(main())
