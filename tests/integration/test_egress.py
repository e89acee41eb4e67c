"""Nothing raw leaves the process: a real `sensekit run` over the bundled demo video and sound,
watched from inside (a Python audit hook installed before sensekit is imported, see
egress_harness.py), from outside (the files left in every directory it could write to) and,
when strace is installed, at the system-call level (C libraries such as OpenCV, SQLite or
TFLite write without audit events).

What the daemon may do, and why:
- write its state directory only: the spool (`spool.sqlite` and SQLite's `-journal`, `-wal`,
  `-shm` companions), the spool's lock file (`spool.sqlite.lock`), the learned voice statistics
  (`voice-normalisation.json`, written atomically through a `.voice-normalisation.json.*`
  temporary file) and the (empty) numba cache directory; and /dev/null, which keeps nothing;
- connect to the configured broker, and to its own loopback listener (paho's socket pair);
- bind the health endpoint on 127.0.0.1 as configured (port 0), paho's socket-pair listener on
  127.0.0.1, and paho's client socket to ('', 0) (create_connection's source address: an
  ephemeral local port for the outgoing connection, never listened on);
- resolve the broker's address and look up the name of 127.0.0.1 (http.server's getfqdn at
  bind: glibc asks the local nscd socket, then reads /etc/hosts; the system-call check would
  show any DNS traffic as a connect to the resolver);
- publish only JSON that matches its schema, on its own topics.
No child process, no log record holding an array, a buffer or a sensekit raw-data object, and
core dumps off (RLIMIT_CORE 0, not dumpable) while it runs.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from paho.mqtt.enums import CallbackAPIVersion

from sensekit.broker import LocalBroker, free_port
from tests.conftest import DEMO_AUDIO, DEMO_VIDEO, ROOT
from tests.homeassistant_schema import DEVICE_DISCOVERY

pytestmark = pytest.mark.timeout(300)

HARNESS = Path(__file__).with_name("egress_harness.py")
DEMO_CONFIG = ROOT / "configs" / "demo.yaml"
RUN_TIMEOUT_S = 150.0

SPOOL = "spool.sqlite"
SPOOL_FILES = {SPOOL, f"{SPOOL}-journal", f"{SPOOL}-wal", f"{SPOOL}-shm", f"{SPOOL}.lock"}
NORMALISATION = "voice-normalisation.json"  # sensekit.voice_runtime.NORMALISATION_FILE
NORMALISATION_TEMP = re.compile(r"^\.voice-normalisation\.json\.[A-Za-z0-9_]+$")
NUMBA_CACHE = "numba-cache"  # sensekit.config.numba_cache_dir's default
STATE_FILES = SPOOL_FILES | {NORMALISATION}

SCHEMA_DIR = resources.files("sensekit.schemas")
KINDS = ("window", "stats", "status", "privacy")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
# Objects keyed by names from the config or the model files rather than by fixed fields: the
# only schema objects allowed to accept keys they do not list. Their values must be closed.
SCHEMA_MAPS = {
    ("stats", "#/properties/cameras"),
    ("stats", "#/properties/microphones"),
    ("stats", "#/properties/models"),
    ("stats", "#/properties/inference_ms"),
}


# -- running the harness ---------------------------------------------------------------------


@dataclass
class Run:
    """One harness run: its report, what the broker received, where it could write."""

    workdir: Path
    state: Path
    home: Path
    tmpdir: Path
    cwd: Path
    broker_host: str
    broker_port: int
    returncode: int
    output: str
    seconds: float
    report: dict[str, Any]
    files_before: set[Path]
    files_after: dict[Path, float]
    started: float
    messages: list[tuple[str, bytes, bool]] = field(default_factory=list)
    strace: Path | None = None


class Collector:
    """Every message on the broker, raw (validation is the test's job)."""

    def __init__(self, host: str, port: int) -> None:
        self.messages: list[tuple[str, bytes, bool]] = []
        self._changed = threading.Condition()
        ready = threading.Event()
        self._client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2)
        self._client.on_connect = lambda c, *a: c.subscribe("#", qos=1)
        self._client.on_subscribe = lambda *a: ready.set()
        self._client.on_message = self._on_message
        self._client.connect(host, port)
        self._client.loop_start()
        assert ready.wait(10), "the test's subscription was not acknowledged"

    def _on_message(self, client: Any, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            self.messages.append((message.topic, bytes(message.payload), bool(message.retain)))
            self._changed.notify_all()

    def wait_for_stopped(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not any(t.endswith("/status") and b'"stopped"' in p for t, p, _ in self.messages):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return  # the message test says what is missing
                self._changed.wait(remaining)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def demo_config(broker: LocalBroker, state: Path) -> dict[str, Any]:
    """configs/demo.yaml with absolute media paths, this test's broker and state directory,
    10 s windows, the health endpoint on, and site normalisation learning (a 0.25 s VAD hop
    gives the ~60 s sound track more than `min_windows` speech windows, so the learned
    statistics are saved at the end: the one learned-state file is exercised)."""
    config = yaml.safe_load(DEMO_CONFIG.read_text())
    config["mqtt"]["url"] = broker.url
    config["cameras"][0]["source"] = str(DEMO_VIDEO)
    config["cameras"][0]["replay"] = "fast"
    config["microphones"][0]["source"] = str(DEMO_AUDIO)
    config["microphones"][0]["replay"] = "fast"
    config["voice"]["normalisation"] = {"mode": "learn", "min_windows": 50}
    config["voice"]["vad"] = {"hop_s": 0.25}
    config["aggregation"]["window_s"] = 10
    config["stats"] = {"interval_s": 1, "http": {"enabled": True, "host": "127.0.0.1", "port": 0}}
    config["state_dir"] = str(state)
    return config


def files_under(*roots: Path) -> dict[Path, float]:
    found: dict[Path, float] = {}
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames]:
                path = Path(dirpath) / name
                found[path] = path.lstat().st_mtime
    return found


def run_harness(
    workdir: Path,
    harness_args: list[str],
    broker: LocalBroker,
    strace: bool = False,
    daemon: bool = True,
) -> Run:
    """Runs the harness in fresh HOME, TMPDIR, XDG and working directories, with the report on
    an inherited pipe, while a subscriber collects everything on the broker."""
    state, home, tmpdir, cwd = (workdir / n for n in ("state", "home", "tmp", "cwd"))
    evidence = workdir / "evidence"  # the test's own files; not scanned
    for directory in (home, tmpdir, cwd, evidence):
        directory.mkdir(parents=True)
    env = {
        **os.environ,
        "HOME": str(home),
        "TMPDIR": str(tmpdir),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_RUNTIME_DIR": str(tmpdir / "runtime"),
        "STATE_DIRECTORY": str(state),
        # The interpreter's bytecode cache is Python's, not sensekit's (a package install
        # ships it compiled): off, so that every write left is the daemon's own.
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    for name in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "NUMBA_CACHE_DIR"):
        env.pop(name, None)
    read_end, write_end = os.pipe()
    command = [sys.executable, str(HARNESS), str(write_end), *harness_args]
    strace_file = evidence / "strace.txt" if strace else None
    if strace_file is not None:
        command = [
            "strace",
            "-f",
            "-qq",
            "-yy",
            "--seccomp-bpf",
            "-s",
            "48",
            "-e",
            "trace=open,openat,openat2,creat,truncate,rename,renameat,renameat2,link,linkat,"
            "symlink,symlinkat,mkdir,mkdirat,connect,bind,listen,sendto,sendmsg,sendmmsg,"
            "execve,execveat,fork,vfork,clone,clone3",
            "-o",
            str(strace_file),
            *command,
        ]
    collector = Collector(broker.host, broker.port)
    files_before = set(files_under(workdir))
    started = time.time()
    chunks: list[bytes] = []
    try:
        process = subprocess.Popen(
            command,
            pass_fds=[write_end],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        os.close(write_end)
        reader = threading.Thread(target=lambda: chunks.extend(iter_pipe(read_end)), daemon=True)
        reader.start()
        try:
            output, _ = process.communicate(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
            raise AssertionError(
                f"the harness ran longer than {RUN_TIMEOUT_S} s:\n{output.decode(errors='replace')}"
            ) from None
        reader.join(timeout=10)
        if daemon:  # its last message may still be on its way to the subscriber
            collector.wait_for_stopped(timeout=10)
    finally:
        collector.close()
        os.close(read_end)
    seconds = time.time() - started
    text = output.decode(errors="replace")
    raw = b"".join(chunks)
    assert raw, f"the harness wrote no report (exit {process.returncode}):\n{text}"
    return Run(
        workdir=workdir,
        state=state,
        home=home,
        tmpdir=tmpdir,
        cwd=cwd,
        broker_host=broker.host,
        broker_port=broker.port,
        returncode=process.returncode,
        output=text,
        seconds=seconds,
        report=json.loads(raw),
        files_before=files_before,
        files_after=files_under(state, home, tmpdir, cwd) if state.exists() else {},
        started=started,
        messages=list(collector.messages),
        strace=strace_file,
    )


def iter_pipe(fd: int) -> Iterator[bytes]:
    while chunk := os.read(fd, 1 << 16):
        yield chunk


def start_daemon_run(workdir: Path, strace: bool = False) -> Run:
    workdir.mkdir(parents=True)
    with LocalBroker() as broker:
        config = workdir / "sensekit.yaml"
        config.write_text(yaml.safe_dump(demo_config(broker, workdir / "state")))
        run = run_harness(workdir, ["--", "run", "--config", str(config)], broker, strace)
    assert run.returncode == 0, f"sensekit run exited {run.returncode}:\n{run.output}"
    assert run.report["exit_code"] == 0, run.output
    assert not run.report["hook_errors"], run.report["hook_errors"]
    return run


@pytest.fixture(scope="module")
def daemon_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The demo through `sensekit run` under the audit hook, once for this module's tests."""
    return start_daemon_run(tmp_path_factory.mktemp("egress") / "run")


@pytest.fixture(scope="module")
def strace_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed: the system-call level check is skipped")
    return start_daemon_run(tmp_path_factory.mktemp("egress-strace") / "run", strace=True)


# -- the rules ---------------------------------------------------------------------------------


def _absolute(path: Any, cwd: Path) -> Path | None:
    if not isinstance(path, str):
        return None
    return Path(os.path.normpath(cwd / path))


def _from(entry: dict[str, Any], module: str) -> bool:
    return f"{module}:" in (entry.get("origin") or "")


def audit_write_violations(report: dict[str, Any], state: Path, cwd: Path) -> list[str]:
    """Files opened for writing, databases opened, and file-system changes, seen by the hook:
    only the state files (see the module doc)."""
    problems = []
    for entry in report["writes"]:
        path = _absolute(entry["path"], cwd)
        allowed = path is not None and (
            path == Path(os.devnull)  # keeps nothing
            or (path.parent == state and path.name in SPOOL_FILES)
            or (path.parent == state and bool(NORMALISATION_TEMP.match(path.name)))
            # NamedTemporaryFile hands its directory to io.open as the name and opens the
            # real file (the mkstemp above) through its opener: the event names the directory
            or (path == state and _from(entry, "sensekit/audio/normalisation.py"))
        )
        if not allowed:
            problems.append(f"opened for writing: {entry}")
    for entry in report["sqlite"]:
        if _absolute(entry["path"], cwd) != state / SPOOL:
            problems.append(f"sqlite3.connect outside the spool: {entry}")
    for entry in report["fs"]:
        event, args = entry["event"], entry["args"]
        paths = [_absolute(a, cwd) for a in args if isinstance(a, str)]
        if event == "os.mkdir" and paths and paths[0] in (state, state / NUMBA_CACHE):
            continue
        if (
            event == "tempfile.mkstemp"
            and paths
            and paths[0].parent == state
            and NORMALISATION_TEMP.match(paths[0].name)
        ):
            continue
        if (
            event == "os.rename"
            and len(paths) == 2
            and paths[0].parent == state
            and NORMALISATION_TEMP.match(paths[0].name)
            and paths[1] == state / NORMALISATION
        ):
            continue
        problems.append(f"file-system change: {entry}")
    return problems


def audit_socket_violations(report: dict[str, Any], broker: tuple[str, int]) -> list[str]:
    """Connects, binds, sends and name look-ups seen by the hook (see the module doc)."""
    host, port = broker
    problems = []
    for entry in report["sockets"]:
        event, address = entry["event"], entry["address"]
        target = tuple(address[:2]) if isinstance(address, list) else address
        if event == "socket.connect" and entry["family"] == "AF_INET":
            if target == (host, port):
                continue
            if entry.get("own_listener") and _from(entry, "paho/mqtt/client.py"):
                continue  # paho's socket pair: a loopback connection to itself
        elif event == "socket.bind" and entry["family"] == "AF_INET":
            if target == ("127.0.0.1", 0) and _from(entry, "sensekit/metrics_http.py"):
                continue  # the configured health endpoint
            if target == ("127.0.0.1", 0) and _from(entry, "paho/mqtt/client.py"):
                continue  # paho's socket-pair listener
            if target == ("", 0) and _from(entry, "paho/mqtt/client.py"):
                continue  # the client socket's ephemeral source address
        elif event == "socket.getaddrinfo" and target == (host, port):
            continue
        elif (
            event == "socket.gethostbyaddr"
            and target == "127.0.0.1"
            and _from(entry, "sensekit/metrics_http.py")
        ):
            continue  # HTTPServer.server_bind's getfqdn of the bind address
        problems.append(f"network: {entry}")
    return problems


# -- the daemon run: the hook --------------------------------------------------------------------


def test_the_hook_saw_the_daemon_work(daemon_run: Run) -> None:
    """A dead hook or log inspector would pass everything below: prove both were live."""
    report, state = daemon_run.report, daemon_run.state
    connects = [s for s in report["sockets"] if s["event"] == "socket.connect"]
    assert any(
        s["address"][:2] == [daemon_run.broker_host, daemon_run.broker_port] for s in connects
    ), report["sockets"]
    assert str(state / SPOOL) in [e["path"] for e in report["sqlite"]]
    assert any(w["path"] == str(state / f"{SPOOL}.lock") for w in report["writes"])
    assert report["log_records"] > 0


def test_writes_only_the_state_files(daemon_run: Run) -> None:
    problems = audit_write_violations(daemon_run.report, daemon_run.state, daemon_run.cwd)
    assert not problems, "\n".join(problems)
    renamed = [e for e in daemon_run.report["fs"] if e["event"] == "os.rename"]
    assert [e["args"][1] for e in renamed] == [str(daemon_run.state / NORMALISATION)], (
        "the learned voice statistics were not saved: the run did not exercise the one "
        f"learned-state file (fewer speech windows than min_windows?)\n{daemon_run.output}"
    )


def test_connects_only_to_the_broker_and_binds_only_loopback(daemon_run: Run) -> None:
    problems = audit_socket_violations(
        daemon_run.report, (daemon_run.broker_host, daemon_run.broker_port)
    )
    assert not problems, "\n".join(problems)
    binds = [s for s in daemon_run.report["sockets"] if s["event"] == "socket.bind"]
    assert any(_from(b, "sensekit/metrics_http.py") for b in binds), "no health endpoint bound"


def test_starts_no_process(daemon_run: Run) -> None:
    processes = daemon_run.report["processes"]
    assert not processes, "child processes:\n" + "\n".join(map(str, processes))


def test_logs_no_raw_data(daemon_run: Run) -> None:
    flagged = daemon_run.report["flagged_logs"]
    assert not flagged, "\n".join(flagged)


def test_core_dumps_are_off_while_it_runs(daemon_run: Run) -> None:
    report = daemon_run.report
    assert report["core"] is not None, "no socket.connect: the sample was never taken"
    for sample in (report["core"], report["core_at_exit"]):
        assert sample["rlimit_core"] == [0, 0], sample
        assert sample["dumpable"] == 0, sample


def test_leaves_only_the_state_files(daemon_run: Run) -> None:
    """Independent of the hook: every file or directory that appeared, or changed during the
    run, in the state directory, HOME, TMPDIR and the working directory."""
    unexpected = []
    for path, mtime in daemon_run.files_after.items():
        if path not in daemon_run.files_before or mtime >= daemon_run.started - 1:
            relative = path.relative_to(daemon_run.workdir)
            if path.parent == daemon_run.state and path.name in STATE_FILES:
                continue
            if path == daemon_run.state / NUMBA_CACHE:
                continue
            unexpected.append(str(relative))
    assert not unexpected, f"files left by the run: {sorted(unexpected)}"
    assert (daemon_run.state / SPOOL).is_file()
    assert (daemon_run.state / NORMALISATION).is_file()
    document = json.loads((daemon_run.state / NORMALISATION).read_text())
    assert set(document) == {
        "schema",
        "feature_version",
        "feature_names",
        "half_life_windows",
        "stats",
    }
    assert set(document["stats"]) == {"count", "weight", "mean", "scatter"}


# -- the daemon run: the broker ------------------------------------------------------------------


def _date_time(value: object) -> bool:
    """RFC 3339 date-time (jsonschema checks it only with rfc3339-validator installed)."""
    if not isinstance(value, str):
        return True
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", value):
        return False
    datetime.fromisoformat(value.replace("Z", "+00:00"))  # raises on 2026-02-30 and the like
    return True


FORMAT_CHECKER = FormatChecker()
FORMAT_CHECKER.checks("date-time", raises=ValueError)(_date_time)


def load_schemas() -> dict[str, dict[str, Any]]:
    """Every schema sensekit ships, by topic kind (privacy only once it exists)."""
    schemas = {}
    for kind in KINDS:
        resource = SCHEMA_DIR.joinpath(f"{kind}.schema.json")
        if resource.is_file():
            schemas[kind] = json.loads(resource.read_text())
    return schemas


def topic_kind(topic: str, base: str) -> str | None:
    if not topic.startswith(base + "/"):
        return None
    rest = topic[len(base) + 1 :].split("/")
    if len(rest) == 1 and rest[0] in ("stats", "status", "privacy"):
        return rest[0]
    if len(rest) == 3 and rest[0] == "zones" and NAME.match(rest[1]) and rest[2] == "window":
        return "window"
    return None


def announced_topics(record: dict[str, Any]) -> set[str]:
    """Every topic a Home Assistant discovery record points Home Assistant at."""
    topics = {item["topic"] for item in record.get("availability", [])}
    for component in record["components"].values():
        topics |= {
            component[key] for key in ("state_topic", "json_attributes_topic") if key in component
        }
    return topics


def test_publishes_only_schema_valid_json(daemon_run: Run) -> None:
    config = yaml.safe_load((daemon_run.workdir / "sensekit.yaml").read_text())
    base = f"{config['mqtt'].get('topic_prefix', 'sensekit')}/{config['site']}/{config['device']}"
    discovery = f"homeassistant/device/{config['site']}/{config['device']}/config"
    schemas = load_schemas()
    validators = {
        kind: Draft202012Validator(schema, format_checker=FORMAT_CHECKER)
        for kind, schema in schemas.items()
    }
    # Home Assistant's discovery record: valid for Home Assistant, and it may only point at
    # topics this device publishes anyway (it describes them; it carries no data of its own).
    validators["homeassistant"] = Draft202012Validator(DEVICE_DISCOVERY)
    published = {topic for topic, _, _ in daemon_run.messages}
    problems = []
    kinds = []
    for topic, payload, _ in daemon_run.messages:
        kind = "homeassistant" if topic == discovery else topic_kind(topic, base)
        if kind == "homeassistant":
            record = json.loads(payload)
            for announced in sorted(announced_topics(record) - published):
                if not announced.startswith(base + "/"):
                    problems.append(f"{topic}: announces a foreign topic {announced}")
        if kind is None or kind not in validators:
            problems.append(f"{topic}: not a sensekit topic with a schema")
            continue
        kinds.append(kind)
        try:
            document = json.loads(payload)
        except ValueError:
            problems.append(f"{topic}: not JSON ({len(payload)} bytes)")
            continue
        for error in validators[kind].iter_errors(document):
            problems.append(f"{topic}: {error.json_path}: {error.message}")
        if kind == "stats":  # the open maps: keyed by names from the config and the models
            cameras = {c["name"] for c in config["cameras"]}
            microphones = {m["name"] for m in config["microphones"]}
            if not set(document.get("cameras", {})) <= cameras:
                problems.append(f"{topic}: cameras {sorted(document['cameras'])}")
            if not set(document.get("microphones", {})) <= microphones:
                problems.append(f"{topic}: microphones {sorted(document['microphones'])}")
            for key in ("models", "inference_ms"):
                if not all(NAME.match(name) for name in document.get(key, {})):
                    problems.append(f"{topic}: {key} keys {sorted(document[key])}")
    assert not problems, "\n".join(problems)
    assert "window" in kinds, f"no window was published: {kinds}\n{daemon_run.output}"
    assert {"status", "stats"} <= set(kinds), kinds


def _closed_object_problems(node: Any, path: str, kind: str, restricting: bool) -> list[str]:
    """Every object a schema describes must forbid keys it does not list
    (`additionalProperties: false`), except the maps in SCHEMA_MAPS, whose values must then be
    closed. A branch of anyOf/oneOf/allOf/if/then/else/not beside a closed object's own
    keywords only narrows that object (JSON Schema keywords are conjunctive), so it need not
    repeat the closure."""
    problems = []
    if isinstance(node, list):
        for index, item in enumerate(node):
            problems += _closed_object_problems(item, f"{path}/{index}", kind, restricting)
        return problems
    if not isinstance(node, dict):
        return problems
    types = node.get("type")
    is_object = (
        types == "object"
        or (isinstance(types, list) and "object" in types)
        or any(k in node for k in ("properties", "patternProperties", "additionalProperties"))
    )
    closed = node.get("additionalProperties") is False
    extra = node.get("additionalProperties")
    if is_object and not restricting and not closed:
        if isinstance(extra, dict) and (kind, path) in SCHEMA_MAPS:
            if extra.get("type") == "object" and extra.get("additionalProperties") is not False:
                problems.append(f"{kind}.schema.json {path}: map values are open objects")
        else:
            problems.append(f"{kind}.schema.json {path}: additionalProperties is not false")
    for key, value in node.items():
        child = f"{path}/{key}"
        if key in ("anyOf", "oneOf", "allOf", "if", "then", "else", "not"):
            problems += _closed_object_problems(value, child, kind, restricting or closed)
        elif key in ("properties", "patternProperties", "$defs", "definitions"):
            if isinstance(value, dict):
                for name, sub in value.items():
                    problems += _closed_object_problems(sub, f"{child}/{name}", kind, restricting)
        elif key in ("items", "prefixItems", "additionalProperties", "contains"):
            problems += _closed_object_problems(value, child, kind, restricting)
    return problems


def test_every_schema_forbids_extra_fields() -> None:
    open_inside = {
        "type": "object",
        "additionalProperties": False,
        "properties": {"a": {"type": "object"}},
        "anyOf": [{"properties": {"a": {"type": "object"}}}],  # narrows, need not close
    }
    assert _closed_object_problems(open_inside, "#", "x", restricting=False) == [
        "x.schema.json #/properties/a: additionalProperties is not false"
    ]  # the walker itself can fail
    schemas = load_schemas()
    assert {"window", "stats", "status"} <= set(schemas)
    problems = []
    for kind, schema in schemas.items():
        Draft202012Validator.check_schema(schema)
        problems += _closed_object_problems(schema, "#", kind, restricting=False)
    assert not problems, "\n".join(problems)
    if "privacy" in schemas:
        assert schemas["privacy"]["properties"]["schema"] == {"const": "sensekit.privacy/1"}


# -- the system-call level ------------------------------------------------------------------------

SYSCALL = re.compile(r"^(?P<pid>\d+) +(?P<name>\w+)\((?P<args>.*)$")
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')
# The health endpoint's HTTPServer.server_bind looks up the name of its bind address
# (socket.getfqdn("127.0.0.1"), the hook's socket.gethostbyaddr); glibc first asks nscd, the
# local name-service cache, over this socket. The question is "who is 127.0.0.1", no data.
NSCD = re.compile(r'sun_path="(/var)?/run/nscd/socket"')
WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")


def syscalls(run: Run) -> list[tuple[str, str, str]]:
    """(pid, name, arguments) of every traced call; a call split by a thread switch is taken
    from its `<unfinished ...>` half, which holds the arguments."""
    assert run.strace is not None
    calls = []
    for line in run.strace.read_text(errors="replace").splitlines():
        match = SYSCALL.match(line)
        if match:
            calls.append((match["pid"], match["name"], match["args"]))
    return calls


def _path_argument(name: str, args: str, cwd: Path) -> Path | None:
    """The file a call names: openat's path relative to its directory (strace -y shows it)."""
    directory = cwd
    at = re.match(r"^(AT_FDCWD|\d+)<([^>]*)>, ", args)
    if name in ("openat", "openat2", "mkdirat") and at:
        directory = Path(at[2])
    quoted = QUOTED.search(args)
    if quoted is None:
        return None
    return Path(os.path.normpath(directory / quoted[1]))


def _inet(args: str) -> tuple[str, str, int] | None:
    family = re.search(r"sa_family=(AF_\w+)", args)
    if family is None:
        return None
    port = re.search(r"sin6?_port=htons\((\d+)\)", args)
    host = re.search(r'inet_addr\("([^"]+)"\)|inet_pton\(AF_INET6, "([^"]+)"', args)
    return (
        family[1],
        (host[1] or host[2]) if host else "",
        int(port[1]) if port else -1,
    )


def test_syscalls_write_only_the_state_files(strace_run: Run) -> None:
    state = strace_run.state
    problems = []
    for pid, name, args in syscalls(strace_run):
        if name in ("open", "openat", "openat2", "creat"):
            quoted = QUOTED.search(args)
            flags = re.search(r"O_[A-Z_|]+", args[quoted.end() :]) if quoted else None
            writing = name == "creat" or (
                flags is not None and any(f in flags[0].split("|") for f in WRITE_FLAGS)
            )
            path = _path_argument(name, args, strace_run.cwd)
            if not writing:
                continue
            if path == Path(os.devnull):
                continue
            if path is not None and path.parent == state and path.name in SPOOL_FILES:
                continue
            if path is not None and path.parent == state and NORMALISATION_TEMP.match(path.name):
                continue
            problems.append(f"{pid} {name}({args}")
        elif name in ("mkdir", "mkdirat"):
            if _path_argument(name, args, strace_run.cwd) in (state, state / NUMBA_CACHE):
                continue
            problems.append(f"{pid} {name}({args}")
        elif name in ("rename", "renameat", "renameat2"):
            paths = QUOTED.findall(args)
            if (
                len(paths) == 2
                and Path(paths[0]).parent == state
                and NORMALISATION_TEMP.match(Path(paths[0]).name)
                and Path(paths[1]) == state / NORMALISATION
            ):
                continue
            problems.append(f"{pid} {name}({args}")
        elif name in ("link", "linkat", "symlink", "symlinkat", "truncate"):
            problems.append(f"{pid} {name}({args}")
    assert not problems, "\n".join(problems)
    assert any(
        name == "openat" and f'"{state / SPOOL}-wal"' in args
        for _, name, args in syscalls(strace_run)
    ), "strace saw no spool write: the trace is not of the daemon"


def test_syscalls_reach_only_the_broker(strace_run: Run) -> None:
    calls = syscalls(strace_run)
    listeners = set()
    for _, name, args in calls:
        if name == "listen":
            bound = re.search(r"<TCP:\[([\d.]+):(\d+)\]>", args)
            assert bound is not None and bound[1] == "127.0.0.1", f"listen({args}"
            listeners.add(int(bound[2]))
    problems = []
    broker = ("AF_INET", strace_run.broker_host, strace_run.broker_port)
    for pid, name, args in calls:
        if name == "connect":
            address = _inet(args)
            if address == broker:
                continue
            if (
                address is not None
                and address[:2] == ("AF_INET", "127.0.0.1")
                and (address[2] in listeners)
            ):
                continue  # paho's socket pair: to its own loopback listener
            if address is not None and address[0] == "AF_UNIX" and NSCD.search(args):
                continue  # glibc asking its name-service cache about 127.0.0.1 (see NSCD)
            problems.append(f"{pid} connect({args}")
        elif name == "bind":
            address = _inet(args)
            if address in (("AF_INET", "127.0.0.1", 0), ("AF_INET", "0.0.0.0", 0)):
                continue  # health endpoint and paho's socket pair; paho's source address
            problems.append(f"{pid} bind({args}")
        elif name == "sendto":
            destination = re.search(
                r", (NULL|\{sa_family=.*\}), \d+(\) = .*| <unfinished \.\.\.>)$", args
            )
            if destination is not None and destination[1] == "NULL":
                continue  # a send on a connected socket: its connect is checked above
            problems.append(f"{pid} sendto({args}")
        elif name in ("sendmsg", "sendmmsg") and "msg_name={" in args:
            problems.append(f"{pid} {name}({args}")  # a datagram to an address
    assert not problems, "\n".join(problems)
    assert any(name == "connect" and _inet(args) == broker for _, name, args in calls)


def test_syscalls_start_no_process(strace_run: Run) -> None:
    calls = syscalls(strace_run)
    programs = [args for _, name, args in calls if name in ("execve", "execveat")]
    assert programs, "strace saw no execve: the trace is broken"
    assert Path(QUOTED.search(programs[0])[1]).name.startswith("python")  # type: ignore[index]
    forks = [
        f"{name}({args}"
        for _, name, args in calls
        if name in ("fork", "vfork") or (name in ("clone", "clone3") and "CLONE_THREAD" not in args)
    ]
    problems = [f"execve({args}" for args in programs[1:]] + forks
    assert not problems, "\n".join(problems)


# -- the negative control -------------------------------------------------------------------------

VIOLATIONS = """
import logging, os, socket, sqlite3, subprocess, sys
import numpy as np
out = sys.argv_dir
with open(os.path.join(out, "frame.npy"), "wb") as f:
    f.write(b"raw")
sqlite3.connect(os.path.join(out, "elsewhere.sqlite")).close()
with socket.socket() as s:
    try:
        s.connect(("127.0.0.1", PORT))
    except OSError:
        pass
subprocess.run(["true"], check=False)
logging.getLogger("payload").warning("frame %s", np.zeros((4, 4, 3), np.uint8))
logging.getLogger("payload").info("audio %r", bytes(1024))
"""


def test_the_harness_catches_a_violation(tmp_path: Path) -> None:
    """A payload in place of sensekit that writes a file to tmp, opens a database there,
    connects to another port, starts a process and logs an array and a buffer: every one is
    reported, and the rules above reject the report."""
    out = tmp_path / "out"
    out.mkdir()
    port = free_port()
    code = VIOLATIONS.replace("sys.argv_dir", repr(str(out))).replace("PORT", str(port))
    with LocalBroker() as broker:
        run = run_harness(tmp_path / "control", ["--exec-python", code], broker, daemon=False)
    assert run.returncode == 0, run.output
    report = run.report
    written = out / "frame.npy"
    assert str(written) in [w["path"] for w in report["writes"]]
    assert str(out / "elsewhere.sqlite") in [s["path"] for s in report["sqlite"]]
    connects = [s for s in report["sockets"] if s["event"] == "socket.connect"]
    assert ["127.0.0.1", port] in [c["address"] for c in connects]
    assert [p["args"][1] for p in report["processes"] if p["event"] == "subprocess.Popen"] == [
        ["true"]
    ]
    assert len(report["flagged_logs"]) == 2, report["flagged_logs"]
    assert "numpy array of shape (4, 4, 3)" in report["flagged_logs"][0]
    assert "bytes of 1024 bytes" in report["flagged_logs"][1]
    # Without sensekit's hardening the process stays dumpable: the sample can tell.
    assert report["core"] is not None and report["core"]["dumpable"] == 1
    # The same rules that pass the daemon reject this.
    state = run.workdir / "state"
    write_problems = audit_write_violations(report, state, run.cwd)
    assert any("frame.npy" in p for p in write_problems), write_problems
    assert any("elsewhere.sqlite" in p for p in write_problems), write_problems
    socket_problems = audit_socket_violations(report, (broker.host, broker.port))
    assert any(str(port) in p for p in socket_problems), socket_problems
