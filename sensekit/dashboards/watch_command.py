"""Placeholder while `sensekit watch` is being written."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Being written."""


def run(args: argparse.Namespace) -> int:
    raise NotImplementedError
