"""Runs the dashboard recipes of deploy/dashboards/ for real: an InfluxDB 1.x server and Node-RED
with the recipe's flow, both private to a test on free loopback ports, and the Grafana dashboard's
queries as Grafana's InfluxDB data source would send them. Installed by install.sh: InfluxDB's
server unpacked into build/influxdb/, Node-RED, its InfluxDB nodes, TypeScript and Grafana's
dashboard types into build/dashboards/ from deploy/dashboards/package-lock.json."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RECIPES = ROOT / "deploy" / "dashboards"
FLOW = RECIPES / "node-red" / "sensekit-influxdb.json"
FLOW_FUNCTION = RECIPES / "node-red" / "to-influxdb-points.js"
DASHBOARD = RECIPES / "grafana" / "sensekit-influxdb.json"
NODE_MODULES = ROOT / "build" / "dashboards" / "node_modules"
NODE_RED = NODE_MODULES / "node-red" / "red.js"
TSC = NODE_MODULES / "typescript" / "bin" / "tsc"
INFLUXD_UNPACKED = ROOT / "build" / "influxdb" / "usr" / "bin" / "influxd"
INSTALL_HINT = "run ./install.sh (it installs the dashboard recipes' tools)"


def influxd_path() -> Path | None:
    if INFLUXD_UNPACKED.exists():
        return INFLUXD_UNPACKED
    found = shutil.which("influxd")
    return Path(found) if found else None


def node_path() -> str | None:
    return shutil.which("node")


def missing_tools() -> list[str]:
    """What install.sh should have installed and did not."""
    missing = []
    if influxd_path() is None:
        missing.append(f"InfluxDB's influxd ({INFLUXD_UNPACKED})")
    if node_path() is None:
        missing.append("Node.js (node)")
    for tool in (
        NODE_RED,
        TSC,
        NODE_MODULES / "node-red-contrib-influxdb",
        NODE_MODULES / "@grafana" / "schema",
    ):
        if not tool.exists():
            missing.append(str(tool))
    return missing


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class InfluxServer:
    """A private influxd on a free loopback port with its data under `directory`."""

    def __init__(self, directory: Path) -> None:
        binary = influxd_path()
        if binary is None:
            raise FileNotFoundError(f"influxd not found: {INSTALL_HINT}")
        self.binary = binary
        self.directory = directory
        self.port = free_port()
        self.log_path = directory / "influxd.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> InfluxServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "influxdb.conf"
        config.write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{free_port()}"\n'
            f'[meta]\n  dir = "{self.directory / "meta"}"\n'
            f'[data]\n  dir = "{self.directory / "data"}"\n  wal-dir = "{self.directory / "wal"}"\n'
            "  query-log-enabled = false\n"
            "[monitor]\n  store-enabled = false\n"
            f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n  log-enabled = false\n'
            '[logging]\n  level = "warn"\n'
        )
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [str(self.binary), "run", "-config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"influxd exited: {self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/ping", timeout=1) as response:
                    if response.status == 204:
                        return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"influxd did not answer /ping: {self.log_path.read_text()}")

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            _stop(self._process)

    def query(self, statement: str, database: str | None = None) -> dict[str, Any]:
        """One InfluxQL statement over HTTP; returns its result (raises on an error)."""
        params = {"q": statement, "epoch": "ms"}
        if database is not None:
            params["db"] = database
        data = urllib.parse.urlencode(params).encode()
        with urllib.request.urlopen(f"{self.url}/query", data=data, timeout=30) as response:
            body = json.loads(response.read())
        result: dict[str, Any] = body["results"][0]
        if "error" in result:
            raise InfluxQueryError(f"{result['error']} in: {statement}")
        return result

    def write_counters(self) -> dict[str, int]:
        """influxd's own counters of points written over HTTP (pointsWrittenOK, ...Fail)."""
        with urllib.request.urlopen(f"{self.url}/debug/vars", timeout=10) as response:
            variables = json.loads(response.read())
        httpd = next(v for k, v in variables.items() if k.startswith("httpd"))
        return {k: int(v) for k, v in httpd["values"].items() if k.startswith("pointsWritten")}


class InfluxQueryError(RuntimeError):
    pass


def series_rows(result: Mapping[str, Any]) -> list[tuple[dict[str, str], dict[str, Any]]]:
    """(tags, row as column -> value) for every row of every series in a query result."""
    rows = []
    for series in result.get("series", []):
        tags = dict(series.get("tags") or {})
        for values in series["values"]:
            rows.append((tags, dict(zip(series["columns"], values, strict=True))))
    return rows


def flow_for(broker_host: str, broker_port: int, influx_port: int) -> list[dict[str, Any]]:
    """The committed flow with only what a person edits after importing it changed: where the
    broker and the InfluxDB server are."""
    flow: list[dict[str, Any]] = json.loads(FLOW.read_text())
    for node in flow:
        if node["type"] == "mqtt-broker":
            node["broker"], node["port"] = broker_host, str(broker_port)
        elif node["type"] == "influxdb":
            node["hostname"], node["port"] = "127.0.0.1", str(influx_port)
    return flow


class NodeRed:
    """Node-RED from build/dashboards/ running `flow` in a private user directory."""

    def __init__(self, directory: Path, flow: list[dict[str, Any]]) -> None:
        node = node_path()
        if node is None or not NODE_RED.exists():
            raise FileNotFoundError(f"Node-RED not installed: {INSTALL_HINT}")
        self.node = node
        self.directory = directory
        self.flow = flow
        self.port = free_port()
        self.log_path = directory / "node-red.log"
        self._process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> NodeRed:
        user_dir = self.directory / "user"
        user_dir.mkdir(parents=True, exist_ok=True)
        flows = user_dir / "flows.json"
        flows.write_text(json.dumps(self.flow))
        settings = user_dir / "settings.js"
        settings.write_text(
            "module.exports = {\n"
            f"  flowFile: {json.dumps(str(flows))}, credentialSecret: false,\n"
            f'  uiHost: "127.0.0.1", uiPort: {self.port}, httpNodeRoot: false,\n'
            '  logging: {console: {level: "info", metrics: false, audit: false}},\n'
            "  telemetry: {enabled: false}, diagnostics: {enabled: false},\n"
            "};\n"
        )
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [self.node, str(NODE_RED), "--userDir", str(user_dir), "--settings", str(settings)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None:
            _stop(self._process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, pattern: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if re.search(pattern, self.log()):
                return
            if self._process is not None and self._process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"Node-RED never logged {pattern!r}:\n{self.log()}")

    def admin_get(self, path: str) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}", headers={"Node-RED-API-Version": "v1"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())


def regex_value(values: Iterable[str]) -> str:
    """A multi-value template variable as Grafana's InfluxDB data source puts it into `=~ /^$v$/`:
    the values regex-escaped, joined as (a|b)."""
    escaped = [re.sub(r"([\\^$.|?*+()\[\]{}/-])", r"\\\1", value) for value in values]
    return "(" + "|".join(escaped) + ")"


def interpolate(
    query: str,
    variables: Mapping[str, str],
    time_from_ms: int,
    time_to_ms: int,
    interval: str,
) -> str:
    """The substitutions Grafana makes before it sends an InfluxQL query: $timeFilter,
    $__interval and the dashboard's template variables (`variables` holds them formatted)."""
    text = query.replace("$timeFilter", f"time >= {time_from_ms}ms and time <= {time_to_ms}ms")
    text = text.replace("$__interval", interval)
    for name in sorted(variables, key=len, reverse=True):
        text = text.replace(f"${name}", variables[name])
    leftover = re.findall(r"\$\w+", text)
    if leftover:
        raise AssertionError(f"unknown variables {leftover} in: {query}")
    return text


PANEL_TYPES = {
    "timeseries": ("timeseries/panelcfg/x/TimeSeriesPanelCfg_types.gen", True),
    "stat": ("stat/panelcfg/x/StatPanelCfg_types.gen", False),
    "state-timeline": ("statetimeline/panelcfg/x/StateTimelinePanelCfg_types.gen", True),
}

_LOOSE = """// Deep-partial, with enums read as their values: a dashboard JSON model says "value" where the
// TypeScript types say MappingType.ValueToText. Unknown properties are still errors.
type Loose<T> = T extends string ? `${T}`
  : T extends number | boolean | null | undefined ? T
  : T extends ReadonlyArray<infer U> ? Array<Loose<U>>
  : T extends object ? { [K in keyof T]?: Loose<T[K]> }
  : T;
"""


def typescript_check(dashboard: Mapping[str, Any]) -> str:
    """TypeScript source that type-checks `dashboard` against @grafana/schema's Dashboard type
    and each panel's options and custom field config against its panel plugin's types."""
    lines = ['import type { Dashboard } from "@grafana/schema";']
    for kind, (module, has_field_config) in PANEL_TYPES.items():
        name = "".join(part.capitalize() for part in kind.split("-"))
        imported = f"Options as {name}Options"
        if has_field_config:
            imported += f", FieldConfig as {name}FieldConfig"
        lines.append(
            f'import type {{ {imported} }} from "@grafana/schema/dist/esm/raw/composable/{module}";'
        )
    lines.append(_LOOSE)
    lines.append(f"export const dashboard = {json.dumps(dashboard)} satisfies Loose<Dashboard>;")
    for index, panel in enumerate(dashboard.get("panels", [])):
        kind = panel.get("type")
        if kind not in PANEL_TYPES:
            raise AssertionError(f"panel {panel.get('title')!r}: no types known for {kind!r}")
        name = "".join(part.capitalize() for part in kind.split("-"))
        lines.append(
            f"export const options{index} = {json.dumps(panel.get('options', {}))}"
            f" satisfies Loose<{name}Options>;"
        )
        custom = panel.get("fieldConfig", {}).get("defaults", {}).get("custom")
        if custom is not None:
            if not PANEL_TYPES[kind][1]:
                raise AssertionError(f"panel {panel.get('title')!r}: {kind} has no custom config")
            lines.append(
                f"export const custom{index} = {json.dumps(custom)}"
                f" satisfies Loose<{name}FieldConfig>;"
            )
    return "\n".join(lines) + "\n"


def run_typescript_check(
    dashboard: Mapping[str, Any], directory: Path
) -> subprocess.CompletedProcess[str]:
    node = node_path()
    if node is None or not TSC.exists():
        raise FileNotFoundError(f"TypeScript not installed: {INSTALL_HINT}")
    directory.mkdir(parents=True, exist_ok=True)
    link = directory / "node_modules"
    if not link.exists():
        link.symlink_to(NODE_MODULES, target_is_directory=True)
    source = directory / "dashboard_check.ts"
    source.write_text(typescript_check(dashboard))
    return subprocess.run(
        [
            node,
            str(TSC),
            "--noEmit",
            "--strict",
            "--skipLibCheck",
            "--target",
            "es2022",
            "--module",
            "nodenext",
            "--moduleResolution",
            "nodenext",
            str(source),
        ],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
    )
