"""Runs `sensekit` (or a payload) under a Python audit hook and reports everything that could
carry data out of the process: files opened for writing, file-system changes, sockets,
child processes, and log records that carry raw data.

    python tests/integration/egress_harness.py REPORT_FD -- run --config FILE
    python tests/integration/egress_harness.py REPORT_FD --exec-python CODE

REPORT_FD is a file descriptor inherited from the caller (`pass_fds`): the JSON report is
written to it once at exit, so the report itself is not a file the hook has to excuse. The
hook is installed before sensekit is imported, and `--log-level DEBUG` is put in front of the
sensekit arguments unless they set a level, so that every record sensekit makes is created
and inspected.

The report (one JSON object):
    exit_code       the CLI's return value (or SystemExit code)
    writes          [{"event", "path", "mode", "flags"}] opens that allow writing
    fs              [{"event", "args"}] mkdir, rename/replace, remove, link, truncate, tempfile,
                    shutil copies and moves
    sqlite          [path] databases opened by sqlite3.connect
    sockets         [{"event", "family", "type", "address"}] connect, bind, sendto, sendmsg,
                    getaddrinfo, gethostbyname, http.client/urllib/smtplib/ftplib connects
    processes       [{"event", "args"}] subprocess.Popen, os.system, exec, spawn, fork
    flagged_logs    [str] log records whose msg or args hold raw data
    log_records     how many records were inspected (a dead inspector would say 0)
    core            {"rlimit_core": [soft, hard], "dumpable": int} sampled at the first
                    socket.connect (after sensekit's start-up hardening), or null
    core_at_exit    the same, sampled at exit
"""

from __future__ import annotations

import atexit
import ctypes
import json
import logging
import os
import resource
import sys
import sysconfig
import threading
import weakref
from typing import Any

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_PR_GET_DUMPABLE = 3
_RAW_BYTES = 64

# libc is loaded before the hook so that sampling from inside the hook opens nothing.
_LIBC = ctypes.CDLL("libc.so.6", use_errno=True)
_STDLIB = os.path.realpath(sysconfig.get_paths()["stdlib"]) + os.sep
_HERE = os.path.realpath(__file__)

_FS_EVENTS = {
    "os.mkdir",
    "os.rename",
    "os.remove",
    "os.rmdir",
    "os.link",
    "os.symlink",
    "os.truncate",
    "os.chmod",
    "os.chown",
    "os.mkfifo",
    "os.mknod",
    "tempfile.mkstemp",
    "tempfile.mkdtemp",
    "shutil.copyfile",
    "shutil.copymode",
    "shutil.copystat",
    "shutil.copytree",
    "shutil.move",
    "shutil.rmtree",
    "shutil.make_archive",
    "shutil.unpack_archive",
}
_SOCKET_EVENTS = {
    "socket.connect",
    "socket.bind",
    "socket.sendto",
    "socket.sendmsg",
    "socket.getaddrinfo",
    "socket.gethostbyname",
    "socket.gethostbyname_ex",
    "socket.gethostbyaddr",
    "http.client.connect",
    "urllib.Request",
    "smtplib.connect",
    "ftplib.connect",
    "poplib.connect",
    "imaplib.open",
    "nntplib.connect",
    "telnetlib.Telnet.open",
    "webbrowser.open",
}
_PROCESS_EVENTS = {
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.startfile",
    "pty.spawn",
    "os.kill",
    "os.killpg",
}


class Report:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.exit_code: int | None = None
        self.writes: list[dict[str, Any]] = []
        self.fs: list[dict[str, Any]] = []
        self.sqlite: list[str] = []
        self.sockets: list[dict[str, Any]] = []
        self.processes: list[dict[str, Any]] = []
        self.flagged_logs: list[str] = []
        self.log_records = 0
        self.core: dict[str, Any] | None = None
        self.core_at_exit: dict[str, Any] | None = None
        self.hook_errors: list[str] = []

    def as_json(self) -> str:
        with self.lock:
            return json.dumps(
                {
                    "exit_code": self.exit_code,
                    "writes": self.writes,
                    "fs": self.fs,
                    "sqlite": self.sqlite,
                    "sockets": self.sockets,
                    "processes": self.processes,
                    "flagged_logs": self.flagged_logs,
                    "log_records": self.log_records,
                    "core": self.core,
                    "core_at_exit": self.core_at_exit,
                    "hook_errors": self.hook_errors,
                }
            )


REPORT = Report()
_inside = threading.local()


def _plain(value: Any) -> Any:
    """Something JSON can hold, without ever dumping a buffer's contents."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        if len(raw) <= _RAW_BYTES:
            return raw.decode("utf-8", "backslashreplace")
        return f"<{type(value).__name__} of {len(raw)} bytes>"
    if isinstance(value, os.PathLike):
        return os.fspath(value) if isinstance(os.fspath(value), str) else repr(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return f"<{type(value).__name__}>"


def core_state() -> dict[str, Any]:
    return {
        "rlimit_core": list(resource.getrlimit(resource.RLIMIT_CORE)),
        "dumpable": int(_LIBC.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0)),
    }


def _origin() -> str | None:
    """The innermost caller outside the standard library and this harness: the code that
    asked for the event (sensekit, paho, ...), as "path:line"."""
    frame = sys._getframe(3)
    while frame is not None:
        name = os.path.realpath(frame.f_code.co_filename)
        if not name.startswith(_STDLIB) and name != _HERE and not name.startswith("<frozen"):
            return f"{_short(name)}:{frame.f_lineno}"
        frame = frame.f_back
    return None


def _short(path: str) -> str:
    for marker in ("/site-packages/", "/work/main/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


# Sockets this process bound, to tell a connect to its own listener (paho's socket pair).
_bound: list[weakref.ref[Any]] = []


def _own_listener_ports() -> set[int]:
    ports = set()
    for ref in _bound:
        sock = ref()
        if sock is None:
            continue
        try:
            name = sock.getsockname()
        except OSError:
            continue
        if isinstance(name, tuple) and len(name) >= 2:
            ports.add(int(name[1]))
    return ports


def _socket_fields(sock: Any) -> tuple[str | None, str | None]:
    try:
        return str(sock.family.name), str(sock.type.name)
    except Exception:  # a socket-like object without them
        return None, None


def _record(event: str, args: tuple[Any, ...]) -> None:
    if event == "open":
        path, mode, flags = args
        writable = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
            isinstance(flags, int) and flags & _WRITE_FLAGS
        )
        if writable:
            with REPORT.lock:
                REPORT.writes.append(
                    {
                        "event": event,
                        "path": _plain(path),
                        "mode": mode,
                        "flags": flags,
                        "origin": _origin(),
                    }
                )
    elif event == "sqlite3.connect":
        with REPORT.lock:
            REPORT.sqlite.append({"path": _plain(args[0]), "origin": _origin()})
    elif event in _SOCKET_EVENTS:
        family = kind = None
        rest: tuple[Any, ...] = args
        if event in {"socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg"}:
            family, kind = _socket_fields(args[0])
            rest = args[1:]
        address = rest[0] if len(rest) == 1 or event == "socket.sendmsg" else rest
        entry: dict[str, Any] = {
            "event": event,
            "family": family,
            "type": kind,
            "address": _plain(address),
            "origin": _origin(),
        }
        if event == "socket.bind":
            _bound.append(weakref.ref(args[0]))
        if event == "socket.connect" and isinstance(address, tuple) and len(address) >= 2:
            entry["own_listener"] = int(address[1]) in _own_listener_ports()
        with REPORT.lock:
            REPORT.sockets.append(entry)
        if event == "socket.connect" and REPORT.core is None:
            REPORT.core = core_state()
    elif event in _PROCESS_EVENTS:
        with REPORT.lock:
            REPORT.processes.append({"event": event, "args": _plain(args), "origin": _origin()})
    elif event in _FS_EVENTS:
        with REPORT.lock:
            REPORT.fs.append({"event": event, "args": _plain(args), "origin": _origin()})


def audit(event: str, args: tuple[Any, ...]) -> None:
    if getattr(_inside, "active", False):
        return  # events raised by the hook's own work (ctypes calls, repr)
    _inside.active = True
    try:
        _record(event, args)
    except Exception as exc:  # a hook must never break the process
        REPORT.hook_errors.append(f"{event}: {type(exc).__name__}: {exc}")
    finally:
        _inside.active = False


# -- log records ------------------------------------------------------------------------------

_RAW_TYPE_NAMES = (
    "VideoFrame",
    "AudioChunk",
    "Face",
    "Box",
    "ClassifiedFace",
    "FrameResult",
    "ExpressionScores",
    "VoiceResult",
    "VoiceScores",
)
_raw_types: tuple[type, tuple[type, ...]] | None = None


def _raw_classes() -> tuple[type, tuple[type, ...]]:
    """numpy's array and sensekit's raw-data types, imported when the first record arrives (by
    then sensekit is loaded; importing them earlier would import sensekit before the hook)."""
    global _raw_types
    if _raw_types is None:
        import numpy as np

        from sensekit import types as sensekit_types

        _raw_types = (
            np.ndarray,
            tuple(getattr(sensekit_types, name) for name in _RAW_TYPE_NAMES),
        )
    return _raw_types


def _raw_reason(value: Any, depth: int = 0) -> str | None:
    if isinstance(value, bytes | bytearray | memoryview):
        size = value.nbytes if isinstance(value, memoryview) else len(value)
        return f"{type(value).__name__} of {size} bytes" if size > _RAW_BYTES else None
    array, sensekit_raw = _raw_classes()
    if isinstance(value, array):
        return f"numpy array of shape {getattr(value, 'shape', '?')}"
    if isinstance(value, sensekit_raw):
        return f"a sensekit {type(value).__name__}"
    if depth < 3:
        if isinstance(value, dict):
            items: list[Any] = [*value.keys(), *value.values()]
        elif isinstance(value, list | tuple | set | frozenset):
            items = list(value)
        else:
            return None
        for item in items[:1000]:
            reason = _raw_reason(item, depth + 1)
            if reason is not None:
                return reason
    return None


_REPR_MARKERS = ("array(", *(f"{name}(" for name in _RAW_TYPE_NAMES))


def inspect_record(record: logging.LogRecord) -> None:
    REPORT.log_records += 1
    try:
        reason = _raw_reason(record.msg)
        if reason is None and record.args:
            reason = _raw_reason(record.args)
        if reason is None and isinstance(record.msg, str):
            marker = next((m for m in _REPR_MARKERS if m in record.msg), None)
            if marker is not None:
                reason = f"message text holds the repr {marker!r}"
    except Exception as exc:
        reason = f"could not inspect: {type(exc).__name__}: {exc}"
    if reason is not None:
        with REPORT.lock:
            REPORT.flagged_logs.append(
                f"{record.name} {record.levelname} {record.pathname}:{record.lineno}: "
                f"{str(record.msg)[:200]!r} ({reason})"
            )


def install_log_inspector() -> None:
    """Every LogRecord passes through the record factory, whatever handlers sensekit installs
    (its setup_logging calls basicConfig(force=True), which would remove a root handler)."""
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        inspect_record(record)
        return record

    logging.setLogRecordFactory(factory)
    logging.getLogger().setLevel(logging.DEBUG)


# -- running ----------------------------------------------------------------------------------


def emit(fd: int) -> None:
    try:
        REPORT.core_at_exit = core_state()
    except Exception as exc:
        REPORT.hook_errors.append(f"core at exit: {exc}")
    data = REPORT.as_json().encode()
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    os.close(fd)


def main(argv: list[str]) -> int:
    if not argv or not argv[0].isdigit():
        print(__doc__, file=sys.stderr)
        return 2
    fd = int(argv[0])
    rest = argv[1:]
    code: str | None = None
    if rest[:1] == ["--exec-python"] and len(rest) >= 2:
        code, rest = rest[1], rest[2:]
    if rest[:1] == ["--"]:
        rest = rest[1:]
    if not any(a == "--log-level" or a.startswith("--log-level=") for a in rest):
        rest = ["--log-level", "DEBUG", *rest]

    os.set_inheritable(fd, False)
    atexit.register(emit, fd)
    sys.addaudithook(audit)
    install_log_inspector()
    try:
        if code is not None:
            exec(compile(code, "<exec-python>", "exec"), {"__name__": "__payload__"})
            result = 0
        else:
            from sensekit.cli import main as sensekit_main

            result = sensekit_main(rest)
    except SystemExit as exc:
        result = exc.code if isinstance(exc.code, int) else 1
    REPORT.exit_code = result
    return result


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
