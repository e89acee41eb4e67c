"""Builds the stages from a config and runs them: capture threads, one inference loop, MQTT.

Shutdown order on a stop request: stop reading, close every open window where the last frame
left it, publish those windows, publish `stopped`, wait (bounded) for the broker's acks.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from sensekit.aggregate import WindowAggregator
from sensekit.config import CameraConfig, Config, ReplayMode
from sensekit.errors import SourceError
from sensekit.health import HealthReporter
from sensekit.sources.capture import CaptureSource
from sensekit.sources.kinds import describe_source, is_live_source
from sensekit.sources.readers import open_reader
from sensekit.tracker import Tracker
from sensekit.types import ZoneWindow
from sensekit.vision.detector import DetectorOptions, FaceDetector
from sensekit.vision.expression import ExpressionClassifier, ExpressionOptions
from sensekit.vision.pipeline import VisionPipeline
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
class CameraRuntime:
    """Everything that belongs to one camera while the daemon runs."""

    config: CameraConfig
    source: CaptureSource
    pipeline: VisionPipeline
    aggregator: WindowAggregator
    live: bool
    last_timestamp: float | None = None
    done: bool = False
    failures: int = 0
    retry_at: float | None = None
    error: str | None = None


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

    def start_sources(self) -> None:
        """Open every camera now, so a wrong device or file fails at start-up, clearly."""
        for runtime in self.cameras:
            log.info(
                "camera %s: opening %s (%s detector, zones: %s)",
                runtime.config.name,
                describe_source(runtime.config.source),
                runtime.config.detector.model.value,
                ", ".join(runtime.pipeline.zones.names),
            )
            runtime.source.start()

    def _publish(self, windows: list[ZoneWindow]) -> None:
        for window in windows:
            payload = self.publisher.publish_window(window)
            self.windows_published += 1
            log.info(
                "window %s: %d people%s",
                payload["window_id"],
                window.people,
                " (breakdown withheld: below k)" if window.suppressed else "",
            )
            if self._on_window is not None:
                self._on_window(payload)

    def run(self, stop: threading.Event) -> int:
        """The inference loop; returns when `stop` is set or every replay has ended."""
        next_stats = time.monotonic() + self.config.stats.interval_s
        while not stop.is_set():
            active = [c for c in self.cameras if not c.done]
            if not active:
                break
            timeout = 0.2 / len(active)
            for runtime in active:
                self._step(runtime, timeout)
            if time.monotonic() >= next_stats:
                next_stats = time.monotonic() + self.config.stats.interval_s
                self.publisher.publish_stats(self.stats())
        return self.shutdown()

    def _step(self, runtime: CameraRuntime, timeout: float) -> None:
        if runtime.retry_at is not None:
            if time.monotonic() < runtime.retry_at:
                return
            self._reopen(runtime)
            return
        frame = runtime.source.read(timeout)
        if frame is not None:
            if not self.first_frame.is_set():
                self.first_frame.set()
            _, observations = runtime.pipeline.process(frame)
            self.health.frame_processed(runtime.config.name)
            runtime.last_timestamp = frame.timestamp
            self._publish(runtime.aggregator.add_frame(frame.timestamp, observations))
            return
        if not runtime.source.finished:
            return
        if runtime.live:
            runtime.error = runtime.source.error or "camera stopped"
            self._schedule_reopen(runtime)
            return
        if runtime.source.error:
            log.error("%s", runtime.source.error)
        end = runtime.source.end_timestamp or runtime.last_timestamp
        if end is not None:
            self._publish(runtime.aggregator.flush(end))
        log.info("camera %s: end of media", runtime.config.name)
        runtime.done = True

    def _schedule_reopen(self, runtime: CameraRuntime) -> None:
        delay = RECONNECT_DELAYS_S[min(runtime.failures, len(RECONNECT_DELAYS_S) - 1)]
        runtime.failures += 1
        runtime.retry_at = time.monotonic() + delay
        log.warning("camera %s: %s; reopening in %.0f s", runtime.config.name, runtime.error, delay)

    def _reopen(self, runtime: CameraRuntime) -> None:
        runtime.retry_at = None
        runtime.source = self._make_source(runtime.config, None)
        try:
            runtime.source.start()
        except SourceError as exc:
            runtime.error = str(exc)
            self._schedule_reopen(runtime)
            return
        log.info("camera %s: reopened", runtime.config.name)
        runtime.failures, runtime.error = 0, None

    def stats(self) -> dict[str, Any]:
        sources: dict[str, dict[str, Any]] = {}
        inference: dict[str, float] = {}
        for runtime in self.cameras:
            source_stats: dict[str, Any] = dict(runtime.source.stats())
            source_stats["state"] = (
                "error" if runtime.error else ("ended" if runtime.done else "ok")
            )
            source_stats["error"] = runtime.error
            sources[runtime.config.name] = source_stats
            times = runtime.pipeline.times
            model = runtime.config.detector.model.value
            inference[f"detector_{model}"] = times.detector_ms
            inference["expression"] = max(inference.get("expression", 0.0), times.expression_ms)
        mqtt_state = getattr(self.publisher, "health", lambda: {})()
        return self.health.report(self._clock(), sources, inference, mqtt_state)

    def shutdown(self) -> int:
        """Close open windows where each camera's last frame left them, then stop publishing."""
        for runtime in self.cameras:
            runtime.source.stop()
        for runtime in self.cameras:
            if runtime.done:
                continue
            # Frames already queued are dropped; the window ends at the last processed frame.
            end = runtime.last_timestamp if not runtime.live else self._clock()
            if end is not None and runtime.aggregator.current_window_start is not None:
                self._publish(runtime.aggregator.flush(end))
            runtime.done = True
        # A last health message, so a dashboard sees the final counters (drops, frames).
        self.publisher.publish_stats(self.stats())
        return self.publisher.stop(SHUTDOWN_FLUSH_S)
