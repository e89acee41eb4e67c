"""Errors a user can act on. The CLI prints their message and exits with their code, no traceback."""

from __future__ import annotations


class SensekitError(Exception):
    """Base of every error caused by the user's input or environment rather than a bug."""

    exit_code = 1


class ConfigError(SensekitError):
    """The configuration file is missing, unparsable or invalid."""

    exit_code = 2

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class ModelError(SensekitError):
    """A model file is missing, corrupt, or not the model we expect."""

    exit_code = 3


class SourceError(SensekitError):
    """A camera, stream or media file cannot be opened or read."""

    exit_code = 4


class BrokerError(SensekitError):
    """The MQTT broker cannot be reached or refuses us."""

    exit_code = 5


class SpoolError(SensekitError):
    """The state directory holding the spool cannot be used (permissions, another daemon)."""

    exit_code = 6
