"""Allows `python -m sensekit`."""

import sys

from sensekit.cli import main

sys.exit(main())
