"""Builds the stages from a config and runs them: capture threads, one inference loop, MQTT.

Cameras and microphones are polled by the same loop; their per-zone windows meet in the
WindowAssembler and then pass the release gate (sensekit.privacy.release), which is the only
way to the publisher: counting (aggregate*.py) is kept apart from deciding what may be
published (the k-threshold and carry-over, optional noise). Outside the opening hours
(`schedule`) every source is closed. A microphone that cannot be opened
or goes away is retried with back-off while the cameras keep running.

A live source that fails, ends or stalls is reopened with jittered back-off, in the background,
so the loop never waits for a driver; while it is down the other sources keep counting and the
stats say what is degraded. The loop reports its progress to the systemd watchdog.

Shutdown order on a stop request: stop reading, close every open window where the last frame
or chunk left it, spool those windows, then (unless the publisher is being kept for a reload)
flush the spool to the broker within a bounded time and publish `stopped`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

from sensekit.aggregate import WindowAggregator
from sensekit.aggregate_voice import VoiceAggregator
from sensekit.assemble import WindowAssembler
from sensekit.backoff import Backoff
from sensekit.config import AtEnd, CameraConfig, Config, MicrophoneConfig, ReplayMode
from sensekit.errors import SourceError
from sensekit.health import HealthReporter, model_info
from sensekit.privacy.masks import ExclusionMask
from sensekit.privacy.release import ReleaseGate, ReleasePolicy
from sensekit.privacy.schedule import OperatingSchedule
from sensekit.sources.audio import AudioSource, describe_audio_source, is_audio_file
from sensekit.sources.capture import CaptureSource
from sensekit.sources.kinds import describe_source, is_live_source
from sensekit.sources.readers import open_reader
from sensekit.systemd import Notifier, Watchdog
from sensekit.tracker import Tracker
from sensekit.types import FaceTally, ZoneTally, ZoneWindow
from sensekit.vision.detector import DetectorOptions, FaceDetector
from sensekit.vision.expression import ExpressionClassifier, ExpressionOptions
from sensekit.vision.gate import FaceGate
from sensekit.vision.pipeline import VisionPipeline
from sensekit.voice_runtime import VoiceRuntime, build_voice_runtime
from sensekit.zones import ZoneMap

log = logging.getLogger(__name__)

REOPEN_MAX_S = 60.0
SHUTDOWN_FLUSH_S = 10.0


class WindowPublisher(Protocol):
    """What the daemon needs of a publisher: aggregates and health in, nothing raw."""

    def publish_window(self, window: ZoneWindow) -> dict[str, Any]: ...

    def publish_stats(self, payload: dict[str, Any]) -> None: ...

    def stop(self, timeout_s: float = 5.0) -> int: ...

    def health(self) -> dict[str, Any]: ...


@dataclass
class Reopening:
    """Back-off state of a live source that failed: why, how often, and when to try again.
    Cameras and microphones share it, so they back off the same way."""

    backoff: Backoff = field(default_factory=lambda: Backoff(1.0, REOPEN_MAX_S))
    retry_at: float | None = None
    error: str | None = None
    reopens: int = 0
    opening: bool = False

    def schedule(self, error: str) -> float:
        """Record a failure; returns the delay before the next attempt."""
        delay = self.backoff.next_delay()
        self.retry_at = time.monotonic() + delay
        self.error = error
        self.opening = False
        return delay

    @property
    def waiting(self) -> bool:
        return self.retry_at is not None

    @property
    def due(self) -> bool:
        return self.retry_at is not None and time.monotonic() >= self.retry_at

    def attempt(self) -> None:
        self.retry_at = None
        self.opening = True
        self.reopens += 1

    def succeeded(self) -> None:
        self.backoff.reset()
        self.retry_at, self.error, self.opening = None, None, False

    @property
    def state(self) -> str:
        if self.opening:
            return "opening"
        return "reopening" if self.error else "ok"


@dataclass
class CameraRuntime:
    """Everything that belongs to one camera while the daemon runs."""

    config: CameraConfig
    source: CaptureSource
    pipeline: VisionPipeline
    aggregator: WindowAggregator
    live: bool
    last_timestamp: float | None = None
    done: bool = False
    reopening: Reopening = field(default_factory=Reopening)


@dataclass
class MicrophoneRuntime:
    """Everything that belongs to one microphone (or replayed audio file) while running."""

    config: MicrophoneConfig
    source: AudioSource
    aggregator: VoiceAggregator
    live: bool
    last_end: float | None = None
    done: bool = False
    reopening: Reopening = field(default_factory=Reopening)
    speech_windows: int = 0


def release_policy(config: Config) -> ReleasePolicy:
    return ReleasePolicy(
        k_threshold=config.aggregation.k_threshold,
        k_windows=config.voice.k_windows,
        dp_epsilon=config.privacy.dp_epsilon,
    )


def detector_options(camera: CameraConfig, threads: int) -> DetectorOptions:
    detector = camera.detector
    return DetectorOptions(
        model=detector.model,
        score_threshold=detector.score_threshold,
        nms_iou_threshold=detector.nms_iou_threshold,
        min_face_px=detector.min_face_px,
        num_threads=threads,
        model_path=detector.model_path,
    )


def build_vision_pipeline(config: Config, camera: CameraConfig) -> VisionPipeline:
    """One camera's models, tracker, zones and masks, as configured (the daemon and the
    self-test build them the same way)."""
    return VisionPipeline(
        FaceDetector(detector_options(camera, config.inference_threads)),
        ExpressionClassifier(
            ExpressionOptions(
                model_path=config.expression.model_path,
                crop_scale=config.expression.crop_scale,
                num_threads=config.inference_threads,
            )
        ),
        Tracker(config.tracker.iou_threshold, config.tracker.max_gap_s, config.tracker.min_frames),
        ZoneMap.from_config(camera),
        face_gate(config, camera),
        ExclusionMask.from_config(camera),
    )


def face_gate(config: Config, camera: CameraConfig) -> FaceGate:
    """The camera's gate; unset keys keep their older meaning (expression.min_face_px, and the
    detector's own threshold, i.e. no extra score gating)."""
    gate = camera.gate
    return FaceGate(
        min_face_px=float(
            config.expression.min_face_px if gate.min_face_px is None else gate.min_face_px
        ),
        min_score=0.0 if gate.min_score is None else gate.min_score,
        max_yaw_deg=gate.max_yaw_deg,
        max_pitch_deg=gate.max_pitch_deg,
        model=camera.detector.model,
    )


def build_assembler(config: Config, grace_s: float) -> WindowAssembler:
    """Joins each zone's camera and microphone windows: a zone's window is complete once every
    source that covers the zone delivered it (or `grace_s` passed)."""
    zone_sources: dict[str, set[str]] = {}
    for camera in config.cameras:
        for zone in camera.effective_zones():
            zone_sources.setdefault(zone.name, set()).add(camera.name)
    for mic in config.microphones:
        zone_sources.setdefault(mic.zone, set()).add(mic.name)
    return WindowAssembler(
        config.site,
        config.device,
        zone_sources,
        camera_zones={z.name for c in config.cameras for z in c.effective_zones()},
        grace_s=grace_s,
    )


def voice_latency_s(config: Config) -> float:
    """How long after a moment of speech its analysis window can still arrive."""
    vad = config.voice.vad
    return vad.window_s + vad.max_pause_s + 1.0


class Daemon:
    def __init__(
        self,
        config: Config,
        publisher: WindowPublisher,
        replay_start: float | None = None,
        clock: Callable[[], float] = time.time,
        on_window: Callable[[dict[str, Any]], None] | None = None,
        notifier: Notifier | None = None,
        watchdog: Watchdog | None = None,
        spool_stats: Callable[[], dict[str, Any]] | None = None,
        gate: ReleaseGate | None = None,
    ) -> None:
        self.config = config
        self.gate = gate or ReleaseGate(release_policy(config))
        self.publisher = publisher
        self._clock = clock
        self._on_window = on_window
        self._notifier = notifier or Notifier(None)
        self._watchdog = watchdog
        self._spool_stats = spool_stats
        self.health = HealthReporter(config.site, config.device, config.stats.interval_s)
        self.windows_published = 0
        self.latest_stats: dict[str, Any] | None = None
        self._stats_due = False
        self.first_frame = threading.Event()
        self._replay_start = replay_start
        self.cameras: list[CameraRuntime] = []
        models: dict[str, Any] = {}
        for camera in config.cameras:
            pipeline = build_vision_pipeline(config, camera)
            models[f"detector_{camera.detector.model.value}"] = pipeline.detector.model_path
            models["expression"] = pipeline.classifier.model_path
            aggregator = WindowAggregator(
                camera.name,
                [zone.name for zone in camera.effective_zones()],
                config.aggregation.window_s,
                visit_gap_s=config.tracker.max_gap_s,
            )
            self.cameras.append(
                CameraRuntime(
                    camera,
                    self._make_source(camera, replay_start),
                    pipeline,
                    aggregator,
                    live=is_live_source(camera.source),
                )
            )
        self.voice: VoiceRuntime | None = None
        self.microphones: list[MicrophoneRuntime] = []
        if config.microphones:
            self.voice = build_voice_runtime(config)
            models["voice"] = self.voice.model_path
            latency = voice_latency_s(config)
            for mic in config.microphones:
                self.microphones.append(
                    MicrophoneRuntime(
                        mic,
                        self._make_audio_source(mic, replay_start),
                        VoiceAggregator(mic.name, mic.zone, config.aggregation.window_s, latency),
                        live=not is_audio_file(mic.source),
                    )
                )
        self.models = {name: model_info(path) for name, path in models.items()}
        self.assembler = build_assembler(config, grace_s=float(config.aggregation.window_s))
        self._live = any(c.live for c in self.cameras) or any(m.live for m in self.microphones)
        self.schedule = OperatingSchedule.from_config(config.schedule)
        self.closed = False
        self._schedule_checked_until: float | None = None

    def _make_source(self, camera: CameraConfig, start_time: float | None) -> CaptureSource:
        def factory() -> Any:
            return open_reader(
                camera.name,
                camera.source,
                camera.width,
                camera.height,
                camera.fps,
                camera.image_fps,
            )

        return CaptureSource(
            camera.name,
            factory,
            queue_size=camera.queue_size,
            realtime=camera.replay is ReplayMode.REALTIME,
            start_time=start_time,
            clock=self._clock,
            stall_s=camera.stall_timeout_s,
        )

    def _make_audio_source(self, mic: MicrophoneConfig, start_time: float | None) -> AudioSource:
        from sensekit.sources.audio import open_audio_source

        return open_audio_source(
            mic.name,
            mic.source,
            mic.sample_rate,
            realtime=mic.replay is ReplayMode.REALTIME,
            start_time=start_time,
            clock=self._clock,
            block_s=mic.block_s,
            buffer_s=mic.buffer_s,
            stall_s=mic.stall_timeout_s,
        )

    def start_sources(self) -> None:
        """Open every source now, so a wrong camera or file fails at start-up, clearly.

        A live microphone that cannot be opened (no PortAudio, no such device) is the
        exception: it is logged and retried with back-off, and the cameras run meanwhile.
        Outside the opening hours nothing is opened at all."""
        if not self.schedule.always_open:
            now = self._clock()
            log.info("opening hours: %s", self.schedule.describe())
            if not self.schedule.is_open(now):
                self._enter_closed(now)
                return
        self._open_sources()

    def _open_sources(self) -> None:
        for runtime in self.cameras:
            log.info(
                "camera %s: opening %s (%s detector, zones: %s)",
                runtime.config.name,
                describe_source(runtime.config.source),
                runtime.config.detector.model.value,
                ", ".join(runtime.pipeline.zones.names),
            )
            runtime.source.start()
        for mic in self.microphones:
            log.info(
                "microphone %s: opening %s (zone %s)",
                mic.config.name,
                describe_audio_source(mic.config.source),
                mic.config.zone,
            )
            if not mic.live:
                mic.source.start()
                continue
            try:
                mic.source.start()
            except SourceError as exc:
                self._schedule_reopen_microphone(mic, str(exc))

    # opening hours ---------------------------------------------------------------------------
    def _until(self, now: float) -> str:
        change = self.schedule.next_change(now)
        if change is None:
            return "no opening time ahead"
        return f"until {_local_time(change, self.config.schedule.timezone)}"

    def _enter_closed(self, now: float) -> None:
        self.closed = True
        log.info("outside opening hours: cameras and microphones stay closed %s", self._until(now))
        self._notifier.ready("closed: outside opening hours")
        self._notifier.status("closed: outside opening hours")
        self._first_data_waived()

    def _check_schedule(self) -> None:
        """Close every source when the opening hours end, open them again when they start.
        The schedule is read at its boundaries only, not every loop."""
        if self.schedule.always_open:
            return
        now = self._clock()
        if self._schedule_checked_until is not None and now < self._schedule_checked_until:
            return
        self._schedule_checked_until = self.schedule.next_change(now)
        is_open = self.schedule.is_open(now)
        if is_open and self.closed:
            self.closed = False
            log.info("opening hours begin: opening the cameras and microphones")
            for runtime in self.cameras:
                runtime.source = self._make_source(runtime.config, None)
                runtime.reopening = Reopening()
            for mic in self.microphones:
                mic.source = self._make_audio_source(mic.config, None)
                mic.reopening = Reopening()
            self._open_sources()
            for name in [c.config.name for c in self.cameras] + [
                m.config.name for m in self.microphones
            ]:
                self.assembler.source_present(name)
            self._notifier.status("counting")
        elif not is_open and not self.closed:
            log.info("opening hours end: closing the cameras and microphones")
            self._close_windows(now)
            self._enter_closed(now)

    def _first_data_waived(self) -> None:
        """A daemon that starts while closed is ready although no data has come yet."""
        if not self.first_frame.is_set():
            self.first_frame.set()
            self._stats_due = True

    def stop_sources(self) -> None:
        """Release the devices (a failed start-up, or a reload that could not build)."""
        for runtime in self.cameras:
            runtime.source.stop()
        for mic in self.microphones:
            mic.source.stop()

    def _publish(self, tallies: list[ZoneTally]) -> None:
        """Every window goes through the release gate on its way out: this is the one path
        from counting to publishing."""
        for tally in tallies:
            window = self.gate.release(tally)
            payload = self.publisher.publish_window(window)
            self.windows_published += 1
            log.info("window %s: %s", payload["window_id"], _describe(window))
            if self._on_window is not None:
                self._on_window(payload)

    def _publish_faces(self, runtime: CameraRuntime, windows: list[FaceTally]) -> None:
        if windows:
            self._publish(self.assembler.add_faces(runtime.config.name, windows))

    def _data_arrived(self, kind: str, name: str, reopening: Reopening) -> None:
        """Data from a source: the first of the run readies the service, the first after a
        reopen brings the source back into its zones' windows."""
        self._first_data()
        if reopening.opening:
            reopening.succeeded()
            self.assembler.source_present(name)
            log.info("%s %s: reopened, data is coming in again", kind, name)

    def _first_data(self) -> None:
        if self.first_frame.is_set():
            return
        self.first_frame.set()
        sources = [c.config.name for c in self.cameras] + [m.config.name for m in self.microphones]
        self._notifier.ready(f"counting: {', '.join(sources)}")
        self._stats_due = True  # the health endpoint and dashboards need not wait an interval

    def _expecting_data(self) -> bool:
        """Whether some source is open and supposed to be delivering right now."""
        return any(
            not c.done and not c.reopening.waiting and not c.source.opening for c in self.cameras
        ) or any(not m.done and not m.reopening.waiting for m in self.microphones)

    def run(self, stop: threading.Event, interrupt: Callable[[], bool] | None = None) -> int:
        """The inference loop; returns when `stop` is set, when every replay has ended, or when
        `interrupt()` says so (a reload that needs a new pipeline: the windows are closed and
        spooled, and the publisher is left running)."""
        next_stats = time.monotonic() + self.config.stats.interval_s
        next_expiry = time.monotonic() + 1.0
        while not stop.is_set():
            if interrupt is not None and interrupt():
                return self.shutdown(stop_publisher=False)
            self._check_schedule()
            if self.closed:
                if self._watchdog is not None:
                    self._watchdog.progress()  # closed by design, not stuck
                stop.wait(0.5)
                if self._stats_due or time.monotonic() >= next_stats:
                    next_stats = time.monotonic() + self.config.stats.interval_s
                    self._stats_due = False
                    self.publish_stats()
                continue
            active = [c for c in self.cameras if not c.done]
            listening = [m for m in self.microphones if not m.done]
            if not active and not listening:
                break
            timeout = 0.2 / (len(active) + len(listening))
            worked = False
            for runtime in active:
                worked |= self._step(runtime, timeout)
            for mic in listening:
                worked |= self._step_microphone(mic, timeout)
            if self._watchdog is not None and (worked or not self._expecting_data()):
                self._watchdog.progress()
            if self._live and time.monotonic() >= next_expiry:
                next_expiry = time.monotonic() + 1.0
                self._publish(self.assembler.expire(self._clock()))
            if self._stats_due or time.monotonic() >= next_stats:
                next_stats = time.monotonic() + self.config.stats.interval_s
                self._stats_due = False
                self.publish_stats()
        return self.shutdown()

    def publish_stats(self) -> None:
        self.latest_stats = self.stats()
        self.publisher.publish_stats(self.latest_stats)

    def _step(self, runtime: CameraRuntime, timeout: float) -> bool:
        """One read from one camera; True when a frame was processed."""
        if runtime.reopening.waiting:
            if runtime.reopening.due:
                self._reopen(runtime)
            return False
        frame = runtime.source.read(timeout)
        if frame is not None:
            self._data_arrived("camera", runtime.config.name, runtime.reopening)
            _, observations = runtime.pipeline.process(frame)
            self.health.frame_processed(runtime.config.name)
            runtime.last_timestamp = frame.timestamp
            self._publish_faces(
                runtime, runtime.aggregator.add_frame(frame.timestamp, observations)
            )
            return True
        if not runtime.source.finished:
            return False
        if runtime.live:
            self._schedule_reopen(runtime, runtime.source.error or "camera stopped")
            return False
        if runtime.source.error:
            log.error("%s", runtime.source.error)
        end = runtime.source.end_timestamp or runtime.last_timestamp
        if runtime.config.at_end is AtEnd.LOOP and end is not None and not runtime.source.error:
            log.info("camera %s: end of media, replaying it again", runtime.config.name)
            runtime.source = self._make_source(runtime.config, end)
            runtime.source.start()
            return False
        if end is not None:
            self._publish_faces(runtime, runtime.aggregator.flush(end))
        log.info("camera %s: end of media", runtime.config.name)
        runtime.done = True
        self._publish(self.assembler.source_absent(runtime.config.name))
        return False

    def _step_microphone(self, mic: MicrophoneRuntime, timeout: float) -> bool:
        """One read from one microphone; True when audio was analysed."""
        assert self.voice is not None
        if mic.reopening.waiting:
            if mic.reopening.due:
                self._reopen_microphone(mic)
            return False
        chunk = mic.source.read(timeout)
        if chunk is not None:
            self._data_arrived("microphone", mic.config.name, mic.reopening)
            results = self.voice.pipeline.process(chunk)
            mic.speech_windows += len(results)
            mic.aggregator.add(results)
            mic.last_end = chunk.end
            windows = mic.aggregator.heard(chunk.timestamp, chunk.end)
            self._publish(self.assembler.add_voice(mic.config.name, windows))
            return True
        if not mic.source.finished:
            return False
        end = mic.source.end_timestamp or mic.last_end
        if (
            not mic.live
            and mic.config.at_end is AtEnd.LOOP
            and end is not None
            and not mic.source.error
        ):
            # The speech in progress ends with the file; the windows go on.
            results = self.voice.pipeline.finish(mic.config.name)
            mic.speech_windows += len(results)
            mic.aggregator.add(results)
            log.info("microphone %s: end of audio, replaying it again", mic.config.name)
            mic.source = self._make_audio_source(mic.config, end)
            mic.source.start()
            return False
        self._finish_microphone(mic, end)
        if mic.live:
            error = mic.source.error or f"microphone {mic.config.name}: stopped delivering audio"
            self._schedule_reopen_microphone(mic, error)
            return False
        if mic.source.error:
            log.error("%s", mic.source.error)
        log.info("microphone %s: end of audio", mic.config.name)
        mic.done = True
        return False

    def _finish_microphone(self, mic: MicrophoneRuntime, end: float | None) -> None:
        """The stream ended: analyse the open speech, close its windows, stop waiting for it."""
        assert self.voice is not None
        results = self.voice.pipeline.finish(mic.config.name)
        mic.speech_windows += len(results)
        mic.aggregator.add(results)
        windows = mic.aggregator.flush(end) if end is not None else []
        self._publish(self.assembler.add_voice(mic.config.name, windows))
        self._publish(self.assembler.source_absent(mic.config.name))

    def _schedule_reopen_microphone(self, mic: MicrophoneRuntime, error: str) -> None:
        delay = mic.reopening.schedule(error)
        self._publish(self.assembler.source_absent(mic.config.name))
        log.warning("%s; retrying in %.0f s (the other sources keep counting)", error, delay)
        self._notifier.status(f"degraded: {error}")

    def _reopen_microphone(self, mic: MicrophoneRuntime) -> None:
        mic.reopening.attempt()
        mic.source = self._make_audio_source(mic.config, None)
        try:
            mic.source.start()
        except SourceError as exc:
            self._schedule_reopen_microphone(mic, str(exc))

    def _schedule_reopen(self, runtime: CameraRuntime, error: str) -> None:
        delay = runtime.reopening.schedule(error)
        self._publish(self.assembler.source_absent(runtime.config.name))
        log.warning(
            "camera %s: %s; reopening in %.0f s (the other sources keep counting)",
            runtime.config.name,
            error,
            delay,
        )
        self._notifier.status(f"degraded: camera {runtime.config.name}: {error}")

    def _reopen(self, runtime: CameraRuntime) -> None:
        """Open a fresh source in its own thread; the loop goes on meanwhile."""
        runtime.reopening.attempt()
        runtime.source = self._make_source(runtime.config, None)
        runtime.source.start_in_background()

    def _close_windows(self, now: float) -> None:
        """Stop reading and close every open window where each source left it (shutdown, a
        reload, the end of the opening hours)."""
        self.stop_sources()
        for runtime in self.cameras:
            if runtime.done:
                continue
            # Frames already queued are dropped; the window ends at the last processed frame.
            end = runtime.last_timestamp if not runtime.live else now
            if end is not None and runtime.aggregator.current_window_start is not None:
                self._publish_faces(runtime, runtime.aggregator.flush(end))
        for mic in self.microphones:
            if mic.done:
                continue
            end = mic.last_end if not mic.live else now
            self._finish_microphone(mic, end)
        self._publish(self.assembler.flush())

    def degraded(self) -> list[str]:
        """What is not working right now, in words, for the stats and the health endpoint."""
        problems: list[str] = []
        # Closed by the schedule is the intended state of the sources, not a fault.
        cameras = [] if self.closed else self.cameras
        microphones = [] if self.closed else self.microphones
        for runtime in cameras:
            state = runtime.reopening.state
            if state != "ok" and not runtime.done:
                problems.append(
                    f"camera {runtime.config.name}: {state} ({runtime.reopening.error or ''})"
                )
        for mic in microphones:
            state = mic.reopening.state
            if state != "ok" and not mic.done:
                problems.append(f"microphone {mic.config.name}: {state} ({mic.reopening.error})")
        mqtt = self.publisher.health()
        if not mqtt.get("connected", True):
            problems.append(f"broker: {mqtt.get('state')} ({mqtt.get('last_error')})")
        if self._watchdog is not None and self._watchdog.stalled:
            problems.append("inference loop: no progress")
        return problems

    def _source_state(self, done: bool, reopening: Reopening) -> str:
        if done:
            return "ended"
        return "closed" if self.closed else reopening.state

    def stats(self) -> dict[str, Any]:
        sources: dict[str, dict[str, Any]] = {}
        inference: dict[str, float] = {}
        for runtime in self.cameras:
            source_stats: dict[str, Any] = dict(runtime.source.stats())
            source_stats["state"] = self._source_state(runtime.done, runtime.reopening)
            source_stats["error"] = runtime.reopening.error
            source_stats["reopens"] = runtime.reopening.reopens
            sources[runtime.config.name] = source_stats
            times = runtime.pipeline.times
            model = runtime.config.detector.model.value
            inference[f"detector_{model}"] = times.detector_ms
            inference["expression"] = max(inference.get("expression", 0.0), times.expression_ms)
        microphones: dict[str, dict[str, Any]] | None = None
        voice: dict[str, Any] | None = None
        if self.voice is not None:
            microphones = {}
            for mic in self.microphones:
                raw = mic.source.stats()
                microphones[mic.config.name] = {
                    "state": self._source_state(mic.done, mic.reopening),
                    "error": mic.reopening.error,
                    "audio_s": round(float(raw.get("audio_s", 0.0)), 1),
                    "overflows": int(raw.get("overflows", 0)),
                    "dropped_s": round(float(raw.get("dropped_s", 0.0)), 2),
                    "speech_windows": mic.speech_windows,
                    "reopens": mic.reopening.reopens,
                }
            times = self.voice.pipeline.times
            inference["voice_vad_per_s"] = times.vad_ms_per_s
            inference["voice_features"] = times.features_ms
            inference["voice_model"] = times.model_ms
            summary = self.voice.normaliser.summary()
            voice = {
                "normalisation": summary["mode"],
                "calibrated": summary["calibrated"],
                "normalisation_windows": summary["windows"],
            }
        return self.health.report(
            self._clock(),
            sources,
            inference,
            self.publisher.health(),
            microphones=microphones,
            voice=voice,
            models=self.models,
            spool=self._spool_stats() if self._spool_stats else None,
            windows_published=self.windows_published,
            degraded=self.degraded(),
        )

    def shutdown(self, stop_publisher: bool = True) -> int:
        """Close open windows where each source left them and spool them; then, unless the
        publisher is kept for a reload, flush to the broker (bounded) and publish `stopped`.
        Returns the windows still waiting in the spool."""
        if not self.closed:
            self._close_windows(self._clock())
            for runtime in self.cameras:
                runtime.done = True
            for mic in self.microphones:
                mic.done = True
        if self.voice is not None:
            self.voice.normaliser.save()
        # A last health message, so a dashboard sees the final counters (drops, frames).
        self.publish_stats()
        if not stop_publisher:
            return 0
        held = self.gate.held()
        if held.visits or held.speech_windows:
            # Device-wide totals only: this line must not say more than the broker was told.
            log.info(
                "not published: %d visits and %d speech windows still below the thresholds "
                "(they are not kept across a restart)",
                held.visits,
                held.speech_windows,
            )
        return self.publisher.stop(SHUTDOWN_FLUSH_S)


def _local_time(timestamp: float, timezone: str) -> str:
    """In the schedule's own time zone, so the log reads like the configured hours."""
    return datetime.fromtimestamp(timestamp, ZoneInfo(timezone)).strftime("%a %Y-%m-%d %H:%M %Z")


def _describe(window: ZoneWindow) -> str:
    """One log line an operator can read, saying only what was published: the journal is
    often shipped off the device, so it must not tell more than the broker does."""
    parts = []
    if window.faces is not None:
        parts.append(f"{window.faces.people} people released")
    if window.voice is not None:
        parts.append(f"{window.voice.windows} speech windows released")
    return ", ".join(parts) or "no counts"
