"""`sensekit run`: the daemon as a service — spool, broker, pipeline, systemd, reloads.

What lives for the whole process: the spool (windows survive anything that happens above it),
the systemd notifier and watchdog, and the optional metrics endpoint. What a reload may
replace: the broker connection (new credentials, new broker) and the pipeline (new cameras,
zones, thresholds). A reload is validated in full before anything is torn down, so an invalid
new config is rejected with its problems logged and the running one carries on untouched.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from sensekit import __version__
from sensekit.app import Daemon, release_policy
from sensekit.config import Config, load_config, state_dir
from sensekit.errors import ConfigError, SensekitError
from sensekit.logsetup import setup_logging
from sensekit.metrics_http import MetricsServer
from sensekit.privacy.facts import privacy_facts
from sensekit.privacy.hardening import forbid_core_dumps
from sensekit.privacy.manifest import manifest_payload
from sensekit.privacy.release import ReleaseGate
from sensekit.publish.homeassistant import discovery_for
from sensekit.publish.mqtt import Identity, MqttPublisher, read_password
from sensekit.publish.spool import SPOOL_FILE, Spool, SpoolLimits
from sensekit.systemd import Notifier, Watchdog, watchdog_interval_s

log = logging.getLogger("sensekit")

# Parts of the config that a reload applies without touching the pipeline.
_PUBLISHER_KEYS = {"mqtt"}
_LIVE_KEYS = {"logging", "stats", "homeassistant"}


def spool_limits(config: Config) -> SpoolLimits:
    return SpoolLimits(
        max_windows=config.spool.max_windows,
        max_bytes=int(config.spool.max_mb * 1024 * 1024),
        max_age_s=config.spool.max_age_h * 3600.0,
    )


def open_spool(config: Config) -> Spool:
    return Spool(state_dir(config) / SPOOL_FILE, spool_limits(config))


def _changed_sections(old: Config, new: Config) -> set[str]:
    return {name for name in Config.model_fields if getattr(old, name) != getattr(new, name)}


class Service:
    def __init__(self, config_path: Path, log_level: str | None = None) -> None:
        self.config_path = config_path
        self._log_level = log_level
        self.stop = threading.Event()
        self.reload = threading.Event()
        self.notifier = Notifier.from_environment()
        self._pending: Config | None = None
        self._spool: Spool | None = None
        self._publisher: MqttPublisher | None = None
        self._daemon: Daemon | None = None
        self._gate: ReleaseGate
        self._metrics: MetricsServer | None = None
        interval = watchdog_interval_s()
        self.watchdog = Watchdog(self.notifier, interval) if interval else None
        self.windows_published = 0

    def install_signal_handlers(self) -> None:
        def on_stop(signum: int, _frame: Any) -> None:
            log.info(
                "received %s: finishing the current window and stopping",
                signal.Signals(signum).name,
            )
            self.stop.set()

        def on_hangup(_signum: int, _frame: Any) -> None:
            log.info("received SIGHUP: reloading %s", self.config_path)
            self.reload.set()

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hangup)

    # building -------------------------------------------------------------------------------
    def _spool_stats(self) -> dict[str, Any]:
        assert self._spool is not None
        return asdict(self._spool.stats())

    def _build_publisher(self, config: Config, background: bool) -> MqttPublisher:
        assert self._spool is not None
        publisher = MqttPublisher(
            config.mqtt,
            Identity(config.site, config.device),
            self._spool,
            manifest=manifest_payload(privacy_facts(config), time.time()),
            discovery=discovery_for(config),
        )
        publisher.start(wait_s=0.0 if background else None)
        return publisher

    def _build_daemon(self, config: Config, publisher: MqttPublisher) -> Daemon:
        # One gate for the whole process: visits held below k in one pipeline are released
        # by the next one after a reload, under the new thresholds.
        self._gate.update(release_policy(config))
        return Daemon(
            config,
            publisher,
            notifier=self.notifier,
            watchdog=self.watchdog,
            spool_stats=self._spool_stats,
            gate=self._gate,
        )

    def _snapshot(self) -> dict[str, Any]:
        daemon = self._daemon
        if daemon is None or daemon.latest_stats is None:
            return {"degraded": ["starting"], "uptime_s": 0.0}
        return daemon.latest_stats

    # running --------------------------------------------------------------------------------
    def run(self) -> int:
        forbid_core_dumps()
        config = load_config(self.config_path)
        setup_logging(self._log_level or config.logging.level)
        log.info(
            "sensekit %s starting: site %s, device %s, state in %s",
            __version__,
            config.site,
            config.device,
            state_dir(config),
        )
        self._spool = open_spool(config)
        self._gate = ReleaseGate(release_policy(config))
        try:
            return self._run(config)
        finally:
            if self._metrics is not None:
                self._metrics.stop()
            if self.watchdog is not None:
                self.watchdog.stop()
            self._spool.close()

    def _run(self, config: Config) -> int:
        self._publisher = self._build_publisher(config, background=False)
        try:
            self._daemon = self._build_daemon(config, self._publisher)
            self._daemon.start_sources()
        except SensekitError:
            self._publisher.stop(2.0)
            raise
        self._start_metrics(config)
        if self.watchdog is not None:
            self.watchdog.start()
        while True:
            left = self._daemon.run(self.stop, interrupt=self._reload_requested)
            self.windows_published += self._daemon.windows_published
            if self._pending is None:
                break
            config = self._swap_pipeline(config, self._pending)
            self._pending = None
        self.notifier.stopping("stopping: windows flushed to the spool")
        log.info(
            "stopped: %d windows counted, %d waiting in the spool", self.windows_published, left
        )
        return 0

    def _start_metrics(self, config: Config) -> None:
        http = config.stats.http
        if not http.enabled:
            return
        self._metrics = MetricsServer(http.host, http.port, self._snapshot)
        try:
            self._metrics.start()
        except OSError as exc:
            log.error(
                "stats.http: cannot listen on %s:%d (%s); the health endpoint is off",
                http.host,
                http.port,
                exc,
            )
            self._metrics = None
            return
        log.info("health and metrics on http://%s:%d/metrics", http.host, self._metrics.port)

    # reloading ------------------------------------------------------------------------------
    def _reload_requested(self) -> bool:
        """Called by the inference loop; True when the pipeline must be rebuilt."""
        if not self.reload.is_set():
            return False
        self.reload.clear()
        self.notifier.reloading()
        assert self._daemon is not None and self._publisher is not None
        current = self._daemon.config
        try:
            new = load_config(self.config_path)
        except ConfigError as exc:
            for problem in exc.problems:
                log.error("reload rejected: %s", problem)
            log.error("reload rejected: the running configuration stays in force")
            self.notifier.ready("reload rejected: invalid config, the old one keeps running")
            return False
        changed = _changed_sections(current, new)
        if "mqtt" not in changed and self._publisher_needs_renewal(new):
            changed.add("mqtt")
        if not changed:
            log.info("reload: the configuration did not change")
            self.notifier.ready("reloaded: no change")
            return False
        if "state_dir" in changed or "spool" in changed:
            log.warning(
                "reload: state_dir and spool bounds take effect at the next restart, not now"
            )
        if "logging" in changed:
            setup_logging(self._log_level or new.logging.level)
        if "mqtt" in changed:
            self._swap_publisher(new)
        elif changed & {"homeassistant", "stats"}:
            self._publisher.set_discovery(discovery_for(new))
        self._daemon.health.interval_s = new.stats.interval_s
        if changed <= _PUBLISHER_KEYS | _LIVE_KEYS | {"state_dir", "spool"}:
            self._daemon.config = self._daemon.config.model_copy(
                update={
                    "mqtt": new.mqtt,
                    "logging": new.logging,
                    "stats": new.stats,
                    "homeassistant": new.homeassistant,
                }
            )
            log.info("reload: applied (%s)", ", ".join(sorted(changed)))
            self.notifier.ready(f"reloaded: {', '.join(sorted(changed))}")
            return False
        log.info("reload: rebuilding the pipeline (%s changed)", ", ".join(sorted(changed)))
        self._pending = new
        return True

    def _publisher_needs_renewal(self, new: Config) -> bool:
        """A rotated password file, or a broker refusing us: reconnect even if the config
        text is the same."""
        assert self._publisher is not None
        if self._publisher.state == "refused":
            return True
        try:
            return read_password(new.mqtt) != self._publisher.password
        except SensekitError:
            return True  # _swap_publisher reports it

    def _swap_publisher(self, new: Config) -> None:
        """A new broker connection; windows in flight on the old one stay in the spool and are
        sent again (a dashboard drops the repeats by window_id)."""
        assert self._daemon is not None and self._publisher is not None
        try:
            publisher = self._build_publisher(new, background=True)
        except SensekitError as exc:
            log.error("reload: the new mqtt settings cannot be used (%s); keeping the old", exc)
            return
        self._publisher.close()
        self._publisher = publisher
        self._daemon.publisher = publisher
        log.info("reload: connecting to %s as configured now", new.mqtt.url)

    def _swap_pipeline(self, old: Config, new: Config) -> Config:
        """The old pipeline has closed and spooled its windows; start the new one, or, if it
        cannot start (a camera that does not open), go back to the old."""
        assert self._publisher is not None
        for candidate, label in ((new, "new"), (old, "previous")):
            daemon: Daemon | None = None
            try:
                daemon = self._build_daemon(candidate, self._publisher)
                daemon.start_sources()
            except SensekitError as exc:
                log.error("reload: the %s configuration cannot start: %s", label, exc)
                if daemon is not None:
                    daemon.stop_sources()
                continue
            self._daemon = daemon
            # What the device measures may have changed: the retained manifest must say so.
            self._publisher.set_manifest(manifest_payload(privacy_facts(candidate), time.time()))
            self._publisher.set_discovery(discovery_for(candidate))
            log.info("reload: running the %s configuration", label)
            return candidate
        raise SensekitError("reload failed and the previous configuration cannot restart")
