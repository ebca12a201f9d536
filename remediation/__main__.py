"""`bin/nautilus-remediation HELPER [TARGET] [--apply] [--yes] [--inventory=PATH] [--bundle-dir=DIR]` runs this; see cli.py."""
import os
import sys

from .cli import main

code = main()
try:
    sys.stdout.flush()
except BrokenPipeError:  # the reader went away (`| head`) before the last of it: nothing left to say, and no complaint
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
sys.exit(code)
