"""Builds the stages from a config and runs them: capture threads, one inference loop, MQTT.

Cameras and microphones are polled by the same loop; their per-zone windows meet in the
WindowAssembler, which is the only way to the publisher. A microphone that cannot be opened
or goes away is retried with back-off while the cameras keep running.

Shutdown order on a stop request: stop reading, close every open window where the last frame
or chunk left it, publish those windows, publish `stopped`, wait (bounded) for the acks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from sensekit.aggregate import WindowAggregator
from sensekit.aggregate_voice import VoiceAggregator
from sensekit.assemble import WindowAssembler
from sensekit.config import CameraConfig, Config, MicrophoneConfig, ReplayMode
from sensekit.errors import SourceError
from sensekit.health import HealthReporter
from sensekit.sources.audio import AudioSource, describe_audio_source, is_audio_file
from sensekit.sources.capture import CaptureSource
from sensekit.sources.kinds import describe_source, is_live_source
from sensekit.sources.readers import open_reader
from sensekit.tracker import Tracker
from sensekit.types import FaceWindow, ZoneWindow
from sensekit.vision.detector import DetectorOptions, FaceDetector
from sensekit.vision.expression import ExpressionClassifier, ExpressionOptions
from sensekit.vision.pipeline import VisionPipeline
from sensekit.voice_runtime import VoiceRuntime, build_voice_runtime
from sensekit.zones import ZoneMap

log = logging.getLogger(__name__)

RECONNECT_DELAYS_S = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
SHUTDOWN_FLUSH_S = 10.0


class WindowPublisher(Protocol):
    """What the daemon needs of a publisher: aggregates and health in, nothing raw."""

    def publish_window(self, window: ZoneWindow) -> dict[str, Any]: ...

    def publish_stats(self, payload: dict[str, Any]) -> None: ...

    def stop(self, timeout_s: float = 5.0) -> int: ...


@dataclass
class Reopening:
    """Back-off state of a live source that failed: why, how often, and when to try again.
    Cameras and microphones share it, so they back off the same way."""

    failures: int = 0
    retry_at: float | None = None
    error: str | None = None

    def schedule(self, error: str) -> float:
        """Record a failure; returns the delay before the next attempt."""
        delay = RECONNECT_DELAYS_S[min(self.failures, len(RECONNECT_DELAYS_S) - 1)]
        self.failures += 1
        self.retry_at = time.monotonic() + delay
        self.error = error
        return delay

    @property
    def waiting(self) -> bool:
        return self.retry_at is not None

    @property
    def due(self) -> bool:
        return self.retry_at is not None and time.monotonic() >= self.retry_at

    def succeeded(self) -> None:
        self.failures, self.retry_at, self.error = 0, None, None


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


def _detector_options(camera: CameraConfig, threads: int) -> DetectorOptions:
    detector = camera.detector
    return DetectorOptions(
        model=detector.model,
        score_threshold=detector.score_threshold,
        nms_iou_threshold=detector.nms_iou_threshold,
        min_face_px=detector.min_face_px,
        num_threads=threads,
        model_path=detector.model_path,
    )


class Daemon:
    def __init__(
        self,
        config: Config,
        publisher: WindowPublisher,
        replay_start: float | None = None,
        clock: Callable[[], float] = time.time,
        on_window: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.config = config
        self.publisher = publisher
        self._clock = clock
        self._on_window = on_window
        self.health = HealthReporter(config.site, config.device)
        self.windows_published = 0
        self.first_frame = threading.Event()
        classifier_options = ExpressionOptions(
            model_path=config.expression.model_path,
            crop_scale=config.expression.crop_scale,
            num_threads=config.inference_threads,
        )
        self._replay_start = replay_start
        self.cameras: list[CameraRuntime] = []
        for camera in config.cameras:
            pipeline = VisionPipeline(
                FaceDetector(_detector_options(camera, config.inference_threads)),
                ExpressionClassifier(classifier_options),
                Tracker(
                    config.tracker.iou_threshold,
                    config.tracker.max_gap_s,
                    config.tracker.min_frames,
                ),
                ZoneMap.from_config(camera),
                config.expression.min_face_px,
            )
            aggregator = WindowAggregator(
                config.site,
                config.device,
                camera.name,
                [zone.name for zone in camera.effective_zones()],
                config.aggregation.window_s,
                config.aggregation.k_threshold,
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
            latency = config.voice.vad.window_s + config.voice.vad.max_pause_s + 1.0
            for mic in config.microphones:
                self.microphones.append(
                    MicrophoneRuntime(
                        mic,
                        self._make_audio_source(mic),
                        VoiceAggregator(
                            mic.name,
                            mic.zone,
                            config.aggregation.window_s,
                            config.voice.k_windows,
                            latency,
                        ),
                        live=not is_audio_file(mic.source),
                    )
                )
        zone_sources: dict[str, set[str]] = {}
        for camera in config.cameras:
            for zone in camera.effective_zones():
                zone_sources.setdefault(zone.name, set()).add(camera.name)
        for mic in config.microphones:
            zone_sources.setdefault(mic.zone, set()).add(mic.name)
        self.assembler = WindowAssembler(
            config.site,
            config.device,
            config.aggregation.k_threshold,
            config.voice.k_windows,
            zone_sources,
            grace_s=float(config.aggregation.window_s),
        )
        self._live = any(c.live for c in self.cameras) or any(m.live for m in self.microphones)

    def _make_source(self, camera: CameraConfig, replay_start: float | None) -> CaptureSource:
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
            start_time=replay_start,
            clock=self._clock,
        )

    def _make_audio_source(self, mic: MicrophoneConfig) -> AudioSource:
        from sensekit.sources.audio import open_audio_source

        return open_audio_source(
            mic.name,
            mic.source,
            mic.sample_rate,
            realtime=mic.replay is ReplayMode.REALTIME,
            start_time=self._replay_start,
            clock=self._clock,
            block_s=mic.block_s,
            buffer_s=mic.buffer_s,
        )

    def start_sources(self) -> None:
        """Open every source now, so a wrong camera or file fails at start-up, clearly.

        A live microphone that cannot be opened (no PortAudio, no such device) is the
        exception: it is logged and retried with back-off, and the cameras run meanwhile."""
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

    def _publish(self, windows: list[ZoneWindow]) -> None:
        for window in windows:
            payload = self.publisher.publish_window(window)
            self.windows_published += 1
            log.info("window %s: %s", payload["window_id"], _describe(window))
            if self._on_window is not None:
                self._on_window(payload)

    def _publish_faces(self, runtime: CameraRuntime, windows: list[FaceWindow]) -> None:
        if windows:
            self._publish(self.assembler.add_faces(runtime.config.name, windows))

    def run(self, stop: threading.Event) -> int:
        """The inference loop; returns when `stop` is set or every replay has ended."""
        next_stats = time.monotonic() + self.config.stats.interval_s
        next_expiry = time.monotonic() + 1.0
        while not stop.is_set():
            active = [c for c in self.cameras if not c.done]
            listening = [m for m in self.microphones if not m.done]
            if not active and not listening:
                break
            timeout = 0.2 / (len(active) + len(listening))
            for runtime in active:
                self._step(runtime, timeout)
            for mic in listening:
                self._step_microphone(mic, timeout)
            if self._live and time.monotonic() >= next_expiry:
                next_expiry = time.monotonic() + 1.0
                self._publish(self.assembler.expire(self._clock()))
            if time.monotonic() >= next_stats:
                next_stats = time.monotonic() + self.config.stats.interval_s
                self.publisher.publish_stats(self.stats())
        return self.shutdown()

    def _step(self, runtime: CameraRuntime, timeout: float) -> None:
        if runtime.reopening.waiting:
            if runtime.reopening.due:
                self._reopen(runtime)
            return
        frame = runtime.source.read(timeout)
        if frame is not None:
            if not self.first_frame.is_set():
                self.first_frame.set()
            _, observations = runtime.pipeline.process(frame)
            self.health.frame_processed(runtime.config.name)
            runtime.last_timestamp = frame.timestamp
            self._publish_faces(
                runtime, runtime.aggregator.add_frame(frame.timestamp, observations)
            )
            return
        if not runtime.source.finished:
            return
        if runtime.live:
            self._schedule_reopen(runtime, runtime.source.error or "camera stopped")
            return
        if runtime.source.error:
            log.error("%s", runtime.source.error)
        end = runtime.source.end_timestamp or runtime.last_timestamp
        if end is not None:
            self._publish_faces(runtime, runtime.aggregator.flush(end))
        log.info("camera %s: end of media", runtime.config.name)
        runtime.done = True
        self._publish(self.assembler.source_absent(runtime.config.name))

    def _step_microphone(self, mic: MicrophoneRuntime, timeout: float) -> None:
        assert self.voice is not None
        if mic.reopening.waiting:
            if mic.reopening.due:
                self._reopen_microphone(mic)
            return
        chunk = mic.source.read(timeout)
        if chunk is not None:
            if not self.first_frame.is_set():
                self.first_frame.set()
            results = self.voice.pipeline.process(chunk)
            mic.speech_windows += len(results)
            mic.aggregator.add(results)
            mic.last_end = chunk.end
            windows = mic.aggregator.heard(chunk.timestamp, chunk.end)
            self._publish(self.assembler.add_voice(mic.config.name, windows))
            return
        if not mic.source.finished:
            return
        self._finish_microphone(mic, mic.source.end_timestamp or mic.last_end)
        if mic.live:
            error = mic.source.error or f"microphone {mic.config.name}: stopped delivering audio"
            self._schedule_reopen_microphone(mic, error)
            return
        if mic.source.error:
            log.error("%s", mic.source.error)
        log.info("microphone %s: end of audio", mic.config.name)
        mic.done = True

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
        log.warning("%s; retrying in %.0f s (the cameras keep running)", error, delay)

    def _reopen_microphone(self, mic: MicrophoneRuntime) -> None:
        mic.source = self._make_audio_source(mic.config)
        if self._restart(mic.config.name, mic.source.start, mic.reopening):
            log.info("microphone %s: opened", mic.config.name)
        else:
            self._schedule_reopen_microphone(mic, mic.reopening.error or "cannot open")

    def _schedule_reopen(self, runtime: CameraRuntime, error: str) -> None:
        delay = runtime.reopening.schedule(error)
        self._publish(self.assembler.source_absent(runtime.config.name))
        log.warning("camera %s: %s; reopening in %.0f s", runtime.config.name, error, delay)

    def _reopen(self, runtime: CameraRuntime) -> None:
        runtime.source = self._make_source(runtime.config, None)
        if self._restart(runtime.config.name, runtime.source.start, runtime.reopening):
            log.info("camera %s: reopened", runtime.config.name)
        else:
            self._schedule_reopen(runtime, runtime.reopening.error or "cannot open")

    def _restart(self, name: str, start: Callable[[], None], reopening: Reopening) -> bool:
        """One reopening attempt; on success the zone's windows wait for this source again."""
        try:
            start()
        except SourceError as exc:
            reopening.error = str(exc)
            return False
        self.assembler.source_present(name)
        reopening.succeeded()
        return True

    def stats(self) -> dict[str, Any]:
        sources: dict[str, dict[str, Any]] = {}
        inference: dict[str, float] = {}
        for runtime in self.cameras:
            source_stats: dict[str, Any] = dict(runtime.source.stats())
            source_stats["state"] = (
                "error" if runtime.reopening.error else ("ended" if runtime.done else "ok")
            )
            source_stats["error"] = runtime.reopening.error
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
                    "state": "error" if mic.reopening.error else ("ended" if mic.done else "ok"),
                    "error": mic.reopening.error,
                    "audio_s": round(float(raw.get("audio_s", 0.0)), 1),
                    "overflows": int(raw.get("overflows", 0)),
                    "dropped_s": round(float(raw.get("dropped_s", 0.0)), 2),
                    "speech_windows": mic.speech_windows,
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
        mqtt_state = getattr(self.publisher, "health", lambda: {})()
        return self.health.report(self._clock(), sources, inference, mqtt_state, microphones, voice)

    def shutdown(self) -> int:
        """Close open windows where each camera's last frame left them, then stop publishing."""
        for runtime in self.cameras:
            runtime.source.stop()
        for mic in self.microphones:
            mic.source.stop()
        for runtime in self.cameras:
            if runtime.done:
                continue
            # Frames already queued are dropped; the window ends at the last processed frame.
            end = runtime.last_timestamp if not runtime.live else self._clock()
            if end is not None and runtime.aggregator.current_window_start is not None:
                self._publish_faces(runtime, runtime.aggregator.flush(end))
            runtime.done = True
        for mic in self.microphones:
            if mic.done:
                continue
            end = mic.last_end if not mic.live else self._clock()
            self._finish_microphone(mic, end)
            mic.done = True
        self._publish(self.assembler.flush())
        if self.voice is not None:
            self.voice.normaliser.save()
        # A last health message, so a dashboard sees the final counters (drops, frames).
        self.publisher.publish_stats(self.stats())
        return self.publisher.stop(SHUTDOWN_FLUSH_S)


def _describe(window: ZoneWindow) -> str:
    """One log line an operator can read: what was counted, what was withheld."""
    parts = []
    if window.faces is not None:
        faces = window.faces
        withheld = " (breakdown withheld: below k)" if faces.suppressed else ""
        parts.append(f"{faces.people} people{withheld}")
    if window.voice is not None:
        voice = window.voice
        withheld = " (breakdown withheld)" if voice.suppressed else ""
        parts.append(f"{voice.windows} speech windows{withheld}")
    return ", ".join(parts)
