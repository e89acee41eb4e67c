"""Logging for an operator: one line per event, no timestamps when journald adds its own."""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(level: str = "INFO") -> None:
    under_journald = bool(os.environ.get("JOURNAL_STREAM")) or not sys.stderr.isatty()
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not under_journald:
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level, format=fmt, datefmt="%H:%M:%S", force=True)
    # paho is silent unless given a logger; keep its chatter at WARNING.
    logging.getLogger("paho").setLevel(logging.WARNING)
