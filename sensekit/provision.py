"""First-boot provisioning: a device's identity and settings, taken from its boot partition.

Why the boot partition: it is FAT, so any laptop can write it after flashing a card. The
operator copies a bundle folder, `sensekit/` (a `sensekit.yaml` plus the files it names: MQTT
password, the broker's CA, optionally a client certificate and key), and at boot
`sensekit-provision.service` runs `sensekit provision`. On images with cloud-init (Raspberry Pi
OS Trixie) the same bundle may instead arrive through cloud-init's `write_files` in
/run/sensekit-provision; the same code installs it, so there is one path to test.

Why so strict: a FAT partition has no owners or modes, so while it is mounted every local user
can read it, and whoever holds the card can read it anywhere. The bundle is therefore checked
as `sensekit check-config` checks a config, plus: every named file lies inside the bundle, is a
regular file (not a symlink: it could point at /etc/shadow), is not oversized, and holds what
its key promises (a non-empty password, PEM certificates, a key that matches its certificate).
Only a fully valid bundle is installed; a bad one changes nothing and leaves
PROVISIONING-FAILED.txt on the card, readable on the laptop that wrote it. After success the
secrets are deleted from the card (which does not scrub their blocks: see PROVISIONED.txt).

Install layout. Several files must change together and a rename is the only atomic step a file
system offers, so each provisioning is a complete release directory and one symlink flip makes
it current:

    /etc/sensekit/releases/<id>/       0750 root:<group>
        sensekit.yaml                  0640 root:<group>
        mqtt-password, client key      0600 <user>:<group>
        ca.crt, client certificate     0644 root:root
    /etc/sensekit/current  -> releases/<id>
    /etc/sensekit/previous -> releases/<id before>     (kept for rollback; older ones deleted)
    /etc/sensekit/sensekit.yaml          -> current/sensekit.yaml
    /etc/sensekit/sensekit.yaml.previous -> previous/sensekit.yaml

Relative paths in a config resolve against the real location of the file, so the installed
config finds its password next to it and `sensekit.yaml.previous` is a complete, working
rollback.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import grp
import logging
import os
import pwd
import shutil
import socket
import stat
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlparse

from sensekit.errors import SensekitError

if TYPE_CHECKING:
    from sensekit.config import Config

log = logging.getLogger(__name__)

DEFAULT_BOOT = Path("/boot/firmware/sensekit")
DEFAULT_ETC = Path("/etc/sensekit")
DEFAULT_USER = "sensekit"
CONFIG_NAME = "sensekit.yaml"
APPLIED_NAME = "sensekit.yaml.applied"
DONE_REPORT = "PROVISIONED.txt"
FAILED_REPORT = "PROVISIONING-FAILED.txt"
MAX_FILE_BYTES = 1024 * 1024
"""Per file. A config, a password, a CA bundle are kilobytes; more is a wrong file."""

EXIT_DONE = 0
EXIT_DEVICE = 1
EXIT_INVALID = 2

FileKind = Literal["password", "ca", "cert", "key"]
# (config key path, kind, secret): the files a bundle may carry, and only these.
_FILE_KEYS: tuple[tuple[tuple[str, ...], FileKind, bool], ...] = (
    (("mqtt", "password_file"), "password", True),
    (("mqtt", "tls", "ca_file"), "ca", False),
    (("mqtt", "tls", "cert_file"), "cert", False),
    (("mqtt", "tls", "key_file"), "key", True),
)
_FAT_NOTE = (
    "Deleting a file from a FAT card does not erase it: its blocks stay on the card until "
    "they are overwritten. Treat a card that held a password or key as sensitive, and rotate "
    "the password (or revoke the certificate) if such a card is lost."
)


class ProvisionError(SensekitError):
    """Nothing can be installed. `problems` are `FILE:LINE: key: message` lines for a bad
    bundle (exit 2), or plain sentences for a problem of the device (exit 1)."""

    def __init__(self, problems: list[str], exit_code: int = EXIT_INVALID) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems
        self.exit_code = exit_code


@dataclass(frozen=True)
class BundleFile:
    """A file the config names, read once: what was checked is exactly what is installed."""

    name: str
    keys: tuple[str, ...]
    kinds: tuple[FileKind, ...]
    secret: bool
    data: bytes


@dataclass(frozen=True)
class Bundle:
    directory: Path
    config: Config
    config_data: bytes
    files: tuple[BundleFile, ...]

    @property
    def has_inline_credentials(self) -> bool:
        """A camera or broker URL with a password in it makes the config itself a secret."""
        urls = [self.config.mqtt.url, *(str(c.source) for c in self.config.cameras)]
        return any("://" in url and urlparse(url).password for url in urls)


@dataclass(frozen=True)
class InstalledFile:
    name: str
    mode: int
    owner: str
    secret: bool


@dataclass
class ProvisionResult:
    status: Literal["provisioned", "checked", "nothing", "failed"]
    exit_code: int = EXIT_DONE
    problems: list[str] = field(default_factory=list)
    release: Path | None = None
    installed: list[InstalledFile] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    report: Path | None = None


# ------------------------------------------------------------------ validation


def _read_regular(path: Path, limit: int) -> bytes:
    """The bytes of a regular file that is not a symlink, or ValueError saying what it is."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ValueError("no such file in the bundle") from None
    except OSError as exc:
        if os.path.islink(path):
            raise ValueError("is a symbolic link; copy the file itself into the bundle") from None
        raise ValueError(f"cannot be read: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ValueError("is not a regular file")
        if info.st_size > limit:
            raise ValueError(
                f"is {info.st_size} bytes, more than the {limit} a bundle file may have "
                "(is it the right file?)"
            )
        return handle.read(limit + 1)


def _inside(bundle: Path, name: str) -> Path:
    """The path of `name` inside the bundle, or ValueError when it would lead elsewhere."""
    pure = PurePosixPath(name)
    if pure.is_absolute():
        raise ValueError(
            "must be a file name inside the bundle folder (e.g. mqtt-password), "
            "not an absolute path"
        )
    if not name.strip() or ".." in pure.parts or pure == PurePosixPath("."):
        raise ValueError("points outside the bundle folder; name a file inside it")
    path = bundle / pure
    root, parent = os.path.realpath(bundle), os.path.realpath(path.parent)
    if parent != root and not parent.startswith(root + os.sep):
        raise ValueError("points outside the bundle folder (through a symbolic link)")
    return path


def _check_content(kinds: tuple[FileKind, ...], data: bytes) -> str | None:
    """What is wrong with a file's content for the keys naming it, or None."""
    if "password" in kinds:
        try:
            text = data.decode("utf-8-sig").strip()
        except UnicodeDecodeError:
            return "is not UTF-8 text"
        if not text:
            return "is empty; it must hold the MQTT password"
        if "\n" in text:
            return "holds more than one line; it must hold only the password"
        if text.upper() in {"CHANGE-ME", "CHANGEME"}:
            return "still holds the example's placeholder; put the device's password in it"
        return None
    if not data.strip():
        return "is empty"
    if "key" in kinds:
        if b"PRIVATE KEY-----" not in data:
            return "is not a PEM private key (-----BEGIN PRIVATE KEY-----)"
        if b"ENCRYPTED" in data:
            return "is protected by a passphrase; sensekit needs an unencrypted key"
        return None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        return (
            "is not a PEM certificate (-----BEGIN CERTIFICATE-----); convert a DER file "
            "with: openssl x509 -inform der -in FILE -out FILE.crt"
        )
    if b"PRIVATE KEY-----" in data:
        where = "the CA file" if "ca" in kinds else "the certificate file"
        return (
            f"contains a private key; {where} must hold certificates only (put a client "
            "key in mqtt.tls.key_file, and never copy a CA's key onto a device)"
        )
    return None


def _check_tls(config: Config, files: dict[str, BundleFile], where: dict[str, str]) -> list[str]:
    """Load the TLS files the way the MQTT client will, from a private copy of the bytes."""
    import ssl  # here: every `sensekit` command builds this module's parser

    tls = config.mqtt.tls
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="sensekit-provision-") as scratch:

        def copy(name: str) -> str:
            path = Path(scratch) / name.replace("/", "_")
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(files[name].data)
            return str(path)

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if tls.ca_file is not None and str(tls.ca_file) in files:
            try:
                context.load_verify_locations(cafile=copy(str(tls.ca_file)))
            except (ssl.SSLError, ValueError) as exc:
                problems.append(
                    f"{where['mqtt.tls.ca_file']}: {tls.ca_file}: is not a valid PEM "
                    f"certificate (OpenSSL: {exc})"
                )
        if tls.cert_file is not None and tls.key_file is not None:
            cert, key = str(tls.cert_file), str(tls.key_file)
            if cert in files and key in files:

                def no_passphrase() -> str:
                    raise ValueError("the key is protected by a passphrase")

                try:
                    keyfile = copy(key) if key != cert else None
                    context.load_cert_chain(copy(cert), keyfile, password=no_passphrase)
                except (ssl.SSLError, ValueError) as exc:
                    reason = str(exc)
                    if "KEY_VALUES_MISMATCH" in reason or "key values mismatch" in reason:
                        reason = "the key does not belong to the certificate"
                    problems.append(f"{where['mqtt.tls.key_file']}: {cert} and {key}: {reason}")
    return problems


def _relative_paths_elsewhere(config: Config) -> list[tuple[tuple[str | int, ...], str]]:
    """Relative paths the bundle cannot carry: they would resolve inside /etc/sensekit."""
    from sensekit.sources.audio import is_audio_file
    from sensekit.sources.kinds import is_live_source

    found: list[tuple[tuple[str | int, ...], str]] = []

    def check(path: tuple[str | int, ...], value: object) -> None:
        if value is not None and not PurePosixPath(str(value)).is_absolute():
            found.append((path, str(value)))

    for index, camera in enumerate(config.cameras):
        if isinstance(camera.source, str) and not is_live_source(camera.source):
            check(("cameras", index, "source"), camera.source)
        check(("cameras", index, "detector", "model_path"), camera.detector.model_path)
    for index, microphone in enumerate(config.microphones):
        if is_audio_file(microphone.source):
            check(("microphones", index, "source"), microphone.source)
    check(("expression", "model_path"), config.expression.model_path)
    check(("voice", "model_path"), config.voice.model_path)
    check(("voice", "numba_cache_dir"), config.voice.numba_cache_dir)
    check(("state_dir",), config.state_dir)
    return found


def read_bundle(directory: Path, limit: int = MAX_FILE_BYTES) -> Bundle:
    """Validate a bundle folder completely; raises ProvisionError listing every problem."""
    from sensekit.config import parse_config
    from sensekit.errors import ConfigError
    from sensekit.yaml_lines import line_of, load_with_lines

    config_path = directory / CONFIG_NAME
    shown = str(config_path)
    try:
        config_data = _read_regular(config_path, limit)
        text = config_data.decode("utf-8-sig")
    except UnicodeDecodeError:  # a ValueError too: first
        raise ProvisionError([f"{shown}:1: (file): is not UTF-8 text"]) from None
    except ValueError as exc:
        raise ProvisionError([f"{shown}:1: (file): {exc}"]) from None
    try:
        config = parse_config(text, shown)
    except ConfigError as exc:
        raise ProvisionError(exc.problems) from None
    data, lines = load_with_lines(text)

    def at(path: tuple[str | int, ...]) -> str:
        return f"{shown}:{line_of(lines, path)}: {'.'.join(str(p) for p in path)}"

    problems: list[str] = []
    if "device" not in data:
        problems.append(
            f"{shown}:1: device: not set; a provisioning bundle must name the device "
            "(otherwise every card would take the host name, the same on all of them)"
        )
    tls = config.mqtt.tls
    if tls.key_file is not None and tls.cert_file is None:
        problems.append(f"{at(('mqtt', 'tls', 'key_file'))}: set mqtt.tls.cert_file too")
    if tls.cert_file is not None and tls.key_file is None:
        problems.append(
            f"{at(('mqtt', 'tls', 'cert_file'))}: set mqtt.tls.key_file too (the key goes in "
            "its own file, which is installed for the service user only)"
        )
    for path, value in _relative_paths_elsewhere(config):
        problems.append(
            f"{at(path)}: {value}: a bundle carries only the MQTT password and TLS files; "
            "give this as an absolute path on the device"
        )

    named: dict[str, tuple[list[str], list[FileKind], bool]] = {}
    where: dict[str, str] = {}
    for key_path, kind, secret in _FILE_KEYS:
        value: object = config
        for part in key_path:
            value = getattr(value, part)
        if value is None:
            continue
        name, key = str(value), ".".join(key_path)
        where[key] = at(key_path)
        try:
            _inside(directory, name)
        except ValueError as exc:
            problems.append(f"{at(key_path)}: {name}: {exc}")
            continue
        if PurePosixPath(name) == PurePosixPath(CONFIG_NAME):
            problems.append(f"{at(key_path)}: {name}: is the config itself")
            continue
        keys, kinds, was_secret = named.get(name, ([], [], False))
        named[name] = ([*keys, key], [*kinds, kind], was_secret or secret)

    files: dict[str, BundleFile] = {}
    for name, (keys, kinds, secret) in named.items():
        try:
            content = _read_regular(directory / name, limit)
        except ValueError as exc:
            problems.append(f"{where[keys[0]]}: {name}: {exc}")
            continue
        if secret and "password" in kinds:
            # Editors on laptops add a byte-order mark or CR LF; the daemon would send them.
            content = content.decode("utf-8-sig", "replace").strip().encode("utf-8") + b"\n"
        wrong = _check_content(tuple(kinds), content)
        if wrong:
            problems.append(f"{where[keys[0]]}: {name}: {wrong}")
            continue
        files[name] = BundleFile(name, tuple(keys), tuple(kinds), secret, content)
    problems.extend(_check_tls(config, files, where))
    if problems:
        raise ProvisionError(problems)
    return Bundle(directory, config, config_data, tuple(files.values()))


# ------------------------------------------------------------------ installation


@dataclass(frozen=True)
class _Owner:
    user: str
    uid: int
    gid: int
    group: str

    @classmethod
    def lookup(cls, user: str) -> _Owner:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            problem = (
                f"user {user!r} does not exist on this device: install sensekit first "
                "(deploy/raspberrypi/install.sh creates it)"
            )
            raise ProvisionError([problem], EXIT_DEVICE) from None
        try:
            group = grp.getgrgid(entry.pw_gid).gr_name
        except KeyError:
            group = str(entry.pw_gid)
        return cls(user, entry.pw_uid, entry.pw_gid, group)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a directory; the rename itself still happened
    finally:
        os.close(fd)


def _write_new(path: Path, data: bytes, uid: int, gid: int, mode: int) -> None:
    """Create `path` (never existing, never through a symlink) already private, then give it
    its owner and mode: the content is never readable by anyone else, not even for an instant."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    try:
        os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _replace_symlink(link: Path, target: str) -> None:
    temporary = link.with_name(f".{link.name}.new-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        temporary.unlink()
    temporary.symlink_to(target)
    os.replace(temporary, link)


def _release_id(releases: Path, now: datetime) -> str:
    base = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    candidate, counter = base, 1
    while (releases / candidate).exists():
        counter += 1
        candidate = f"{base}-{counter}"
    return candidate


@contextlib.contextmanager
def _locked(etc_dir: Path) -> Iterator[None]:
    """One provisioning at a time (the boot unit and an operator's manual run)."""
    fd = os.open(etc_dir / ".provision.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _install(
    bundle: Bundle, etc_dir: Path, owner: _Owner, now: datetime
) -> tuple[Path, list[InstalledFile]]:
    """Write a complete release, then make it current with one rename."""
    releases = etc_dir / "releases"
    for folder in (etc_dir, releases):
        folder.mkdir(mode=0o750, exist_ok=True)
        os.chown(folder, 0, owner.gid)
        folder.chmod(0o750)
    for stale in releases.glob(".new-*"):  # a run that died half-way
        shutil.rmtree(stale, ignore_errors=True)

    release_id = _release_id(releases, now)
    staging = releases / f".new-{release_id}"
    staging.mkdir(mode=0o700)
    installed = [InstalledFile(CONFIG_NAME, 0o640, f"root:{owner.group}", False)]
    try:
        _write_new(staging / CONFIG_NAME, bundle.config_data, 0, owner.gid, 0o640)
        for item in bundle.files:
            target = staging / item.name
            for parent in reversed(PurePosixPath(item.name).parents[:-1]):
                sub = staging / parent
                if not sub.exists():
                    sub.mkdir(mode=0o750)
                    os.chown(sub, 0, owner.gid)
            if item.secret:
                _write_new(target, item.data, owner.uid, owner.gid, 0o600)
                label = f"{owner.user}:{owner.group}"
                installed.append(InstalledFile(item.name, 0o600, label, True))
            else:
                _write_new(target, item.data, 0, 0, 0o644)
                installed.append(InstalledFile(item.name, 0o644, "root:root", False))
        _fsync_dir(staging)
        os.chown(staging, 0, owner.gid)
        staging.chmod(0o750)
        os.rename(staging, releases / release_id)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_dir(releases)

    current, previous = etc_dir / "current", etc_dir / "previous"
    old = os.readlink(current) if current.is_symlink() else None
    if old is not None and old != f"releases/{release_id}":
        _replace_symlink(previous, old)
    _replace_symlink(current, f"releases/{release_id}")

    config_link = etc_dir / CONFIG_NAME
    wanted = f"current/{CONFIG_NAME}"
    previous_config = etc_dir / f"{CONFIG_NAME}.previous"
    if not config_link.is_symlink() and config_link.exists():
        # A config installed by hand before: keep it, by a hard link, as the rollback.
        keep = previous_config.with_name(f".{previous_config.name}.new-{os.getpid()}")
        with contextlib.suppress(FileNotFoundError):
            keep.unlink()
        os.link(config_link, keep)
        os.replace(keep, previous_config)
    elif old is not None:
        _replace_symlink(previous_config, f"previous/{CONFIG_NAME}")
    if not (config_link.is_symlink() and os.readlink(config_link) == wanted):
        _replace_symlink(config_link, wanted)
    _fsync_dir(etc_dir)

    links = [link for link in (current, previous) if link.is_symlink()]
    keep_ids = {os.path.basename(os.readlink(link)) for link in links}
    for release in releases.iterdir():
        if release.name not in keep_ids and not release.name.startswith("."):
            shutil.rmtree(release, ignore_errors=True)
    return releases / release_id, installed


# ------------------------------------------------------------------ reports on the card


def _redacted(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":***@", 1)
    return url


def _write_report(folder: Path, name: str, text: str) -> Path | None:
    """Best effort: the card may be read-only or full; the journal has everything anyway."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        temporary = folder / f".{name}.new"
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, folder / name)
        _fsync_dir(folder)
        return folder / name
    except OSError as exc:
        log.warning("could not write %s in %s: %s", name, folder, exc.strerror or exc)
        return None


def _wrap(paragraph: str) -> str:
    """Reports are read in a laptop's text editor: lines of a readable length."""
    return textwrap.fill(paragraph, width=78)


def _stamp(now: datetime) -> str:
    return (
        f"{now.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC by this device's clock "
        f"(host {socket.gethostname()}; a Pi without network time may be wrong)"
    )


def _failed_text(
    bundle_dir: Path, etc_dir: Path, problems: list[str], now: datetime, device_problem: bool
) -> str:
    current = etc_dir / CONFIG_NAME
    keeps = (
        f"The device keeps the configuration it had ({current})."
        if current.exists()
        else "The device has no sensekit configuration yet, so sensekit does not start."
    )
    fix = (
        "This is a problem of the device, not of the bundle: see the journal "
        "(journalctl -u sensekit-provision) or ask whoever installed the image."
        if device_problem
        else "Fix the files in this folder (on any computer), put the card back and restart "
        "the device. Check a bundle beforehand with: sensekit provision --check --boot FOLDER"
    )
    lines = [
        "sensekit provisioning FAILED: nothing was installed.",
        "",
        f"When:   {_stamp(now)}",
        f"Bundle: {bundle_dir}",
        _wrap(keeps),
        "",
        "Problems (file:line: key: what is wrong):",
        *(f"  {problem}" for problem in problems),
        "",
        _wrap(fix),
        "",
    ]
    return "\n".join(lines)


def _done_text(bundle: Bundle, result: ProvisionResult, kept: list[str], now: datetime) -> str:
    config = bundle.config
    mqtt = config.mqtt
    who = f" as user {mqtt.username}" if mqtt.username else ""
    lines = [
        "sensekit provisioning DONE.",
        "",
        f"When:    {_stamp(now)}",
        f"Site:    {config.site}",
        f"Device:  {config.device}",
        f"Broker:  {_redacted(mqtt.url)}{who}",
        f"Release: {result.release}",
        "Installed:",
        *(
            f"  {item.name:<24} {item.mode:04o} {item.owner}{'  (secret)' if item.secret else ''}"
            for item in result.installed
        ),
        f"Removed from this card: {', '.join(result.removed) or 'nothing'}",
        f"Left on this card:      {', '.join(kept) or 'nothing'}",
        "",
        _wrap(
            "To change the settings: put a new sensekit.yaml and every file it names (the "
            "password file too: it was removed) in this folder, and restart the device."
        ),
        "",
        _wrap(_FAT_NOTE),
        "",
    ]
    return "\n".join(lines)


def _clean_boot(bundle: Bundle) -> tuple[list[str], list[str]]:
    """Delete the secrets (and a config holding credentials) from the bundle folder, and mark
    the config applied so it is not installed again at every boot. Returns (removed, kept)."""
    directory = bundle.directory
    removed: list[str] = []
    for item in bundle.files:
        if item.secret:
            (directory / item.name).unlink()
            removed.append(item.name)
    config = directory / CONFIG_NAME
    if bundle.has_inline_credentials:
        config.unlink()
        removed.append(f"{CONFIG_NAME} (it holds credentials in a URL)")
        with contextlib.suppress(FileNotFoundError):
            (directory / APPLIED_NAME).unlink()
    else:
        os.replace(config, directory / APPLIED_NAME)
    _fsync_dir(directory)
    kept = [item.name for item in bundle.files if not item.secret]
    if not bundle.has_inline_credentials:
        kept.append(f"{APPLIED_NAME} (the applied config)")
    return removed, kept


# ------------------------------------------------------------------ the entry points


def provision(
    boot_dir: Path = DEFAULT_BOOT,
    etc_dir: Path = DEFAULT_ETC,
    user: str = DEFAULT_USER,
    *,
    report_dir: Path | None = None,
    check_only: bool = False,
    now: datetime | None = None,
    limit: int = MAX_FILE_BYTES,
) -> ProvisionResult:
    """Install the bundle in `boot_dir` into `etc_dir`, or explain on the card why not.

    No bundle (no `sensekit.yaml` in `boot_dir`) is not an error: that is every boot after the
    first. `check_only` validates and writes nothing (an operator's laptop, before flashing).
    `report_dir` is where PROVISIONED.txt / PROVISIONING-FAILED.txt go (default `boot_dir`).
    """
    now = now or datetime.now(UTC)
    report_dir = report_dir or boot_dir
    config_path = boot_dir / CONFIG_NAME
    if not os.path.lexists(config_path):
        log.info("nothing to provision: no %s", config_path)
        return ProvisionResult("nothing")
    log.info("provisioning from %s", config_path)
    try:
        bundle = read_bundle(boot_dir, limit)
        if check_only:
            log.info("%s: valid bundle for device %s", boot_dir, bundle.config.device)
            return ProvisionResult("checked")
        if os.geteuid() != 0:
            problem = (
                "provisioning must run as root: it installs files owned by root and by "
                f"{user!r} (use --check to only validate)"
            )
            raise ProvisionError([problem], EXIT_DEVICE)
        owner = _Owner.lookup(user)
        etc_dir.mkdir(mode=0o750, exist_ok=True)
        with _locked(etc_dir):
            release, installed = _install(bundle, etc_dir, owner, now)
    except ProvisionError as exc:
        return _fail(boot_dir, etc_dir, report_dir, exc.problems, exc.exit_code, now, check_only)
    except OSError as exc:
        problem = f"{exc.filename or etc_dir}: cannot install: {exc.strerror or exc}"
        return _fail(boot_dir, etc_dir, report_dir, [problem], EXIT_DEVICE, now, check_only)

    result = ProvisionResult("provisioned", release=release, installed=installed)
    log.info(
        "installed the config of site %s, device %s into %s (%s)",
        bundle.config.site,
        bundle.config.device,
        etc_dir,
        ", ".join(f"{item.name} {item.mode:04o} {item.owner}" for item in installed),
    )
    try:
        result.removed, kept = _clean_boot(bundle)
    except OSError as exc:
        # Installed, but a secret stays on a card anyone can read: say so loudly.
        result.exit_code = EXIT_DEVICE
        result.problems = [
            f"{exc.filename or boot_dir}: installed, but could not be removed from the boot "
            f"partition: {exc.strerror or exc}; delete it by hand"
        ]
        log.error("%s", result.problems[0])
        return result
    if result.removed:
        log.info("removed from the boot partition: %s", ", ".join(result.removed))
    with contextlib.suppress(OSError):
        (report_dir / FAILED_REPORT).unlink()
    result.report = _write_report(report_dir, DONE_REPORT, _done_text(bundle, result, kept, now))
    return result


def _fail(
    boot_dir: Path,
    etc_dir: Path,
    report_dir: Path,
    problems: list[str],
    exit_code: int,
    now: datetime,
    check_only: bool,
) -> ProvisionResult:
    """Print the problems for the console (the unit sends stderr there), log one summary line
    for the journal, and leave the same text on the card for whoever reads it on a laptop."""
    for problem in problems:
        print(problem, file=sys.stderr)
    result = ProvisionResult("failed", exit_code=exit_code, problems=problems)
    if check_only:
        log.error("%s: invalid bundle: %d problem(s)", boot_dir, len(problems))
        return result
    text = _failed_text(boot_dir, etc_dir, problems, now, exit_code == EXIT_DEVICE)
    result.report = _write_report(report_dir, FAILED_REPORT, text)
    log.error(
        "provisioning FAILED, nothing was installed: %d problem(s)%s",
        len(problems),
        f"; details in {result.report}" if result.report else "",
    )
    return result


def main_provision(args: argparse.Namespace) -> int:
    """`sensekit provision`: 0 installed or nothing to do, 2 invalid bundle, 1 device problem."""
    result = provision(
        Path(args.boot),
        Path(args.etc),
        args.user,
        report_dir=Path(args.report) if args.report else None,
        check_only=args.check,
    )
    return result.exit_code


def add_provision_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `provision` subcommand, for sensekit/cli.py's build_parser()."""
    parser = sub.add_parser(
        "provision",
        help="install a device's config and credentials from the boot partition (first boot)",
        description=(
            "Install the bundle in --boot (sensekit.yaml and the files it names: "
            "mqtt.password_file, mqtt.tls.ca_file, cert_file, key_file, all inside that "
            "folder) into --etc. The bundle is validated like check-config, plus its files "
            "(inside the folder, regular files, not symlinks, at most 1 MiB, a non-empty "
            "password, PEM certificates, a key matching its certificate). Secrets are "
            "installed 0600 for --user, the config 0640 root:<group>, certificates 0644; "
            "the previous config stays as sensekit.yaml.previous. Then the password and key "
            "are deleted from --boot, sensekit.yaml is renamed sensekit.yaml.applied and "
            "PROVISIONED.txt written. An invalid bundle installs nothing and leaves "
            "PROVISIONING-FAILED.txt. No sensekit.yaml in --boot: nothing to do (exit 0). "
            "Exit 2: invalid bundle; 1: a problem of the device (not root, no such user)."
        ),
    )
    parser.add_argument("--boot", default=str(DEFAULT_BOOT), help=f"default {DEFAULT_BOOT}")
    parser.add_argument("--etc", default=str(DEFAULT_ETC), help=f"default {DEFAULT_ETC}")
    parser.add_argument(
        "--user", default=DEFAULT_USER, help=f"the service user (default {DEFAULT_USER})"
    )
    parser.add_argument(
        "--report", help="folder for PROVISIONED.txt / PROVISIONING-FAILED.txt (default --boot)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="only validate the bundle; write nothing, needs no root (e.g. on a laptop)",
    )
    parser.set_defaults(func=main_provision)
