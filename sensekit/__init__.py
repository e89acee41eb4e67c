"""sensekit: anonymous per-zone emotion statistics from a camera, published over MQTT."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sensekit")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+unknown"
