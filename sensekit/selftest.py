"""`sensekit selftest`: proves an installed sensekit works on this machine, without a camera,
a microphone or a broker.

It is what an image build, a fleet upgrade or the aarch64 emulation proof runs after
installing: a wheel can install cleanly and still fail at run time (an interpreter build that
crashes in `allocate_tensors()`, an OpenCV without a video decoder, a missing shared library).
So it goes through the real stages, with the real models, on the bundled media, and compares
the result with the media's ground truth:

1. every bundled model loads and gives finite outputs (probabilities summing to 1 where the
   model ends in a softmax), the float reference exports (`*_float.tflite`, which only
   `sensekit eval` uses) included, invoked with float input and held to float rounding;
2. the first window of the demo video through detection, classification, tracking, zones and
   window counting: detector recall against the known face boxes, people per zone against the
   ground truth, and the expression the bundled faces show;
3. the same window of the demo sound through voice activity detection and the prosody model:
   the speech windows found must be within the ground truth's bounds;
4. that window through the release gate: nothing below k goes out, and released + held equals
   what was counted.

It writes nothing outside a temporary directory it removes, opens no network connection, and
never publishes: the result is the exit code and a report on stdout.
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sensekit.aggregate import WindowAggregator
from sensekit.aggregate_voice import VoiceAggregator
from sensekit.app import (
    build_assembler,
    build_vision_pipeline,
    release_policy,
    voice_latency_s,
)
from sensekit.config import Config, ReplayMode, load_config
from sensekit.demo import bundled, demo_config_path
from sensekit.errors import ModelError, SourceError
from sensekit.privacy.release import ReleaseGate
from sensekit.runtime import TFLiteModel, models_dir
from sensekit.sources.audio import open_audio_source
from sensekit.sources.readers import open_reader
from sensekit.types import EXPRESSION_LABELS, FaceTally, VideoFrame, VoiceTally, ZoneWindow
from sensekit.vision.detector import iou_matrix
from sensekit.voice_runtime import build_voice_runtime

RECALL_IOU = 0.4
"""A detection matches a known face when their boxes overlap this much (as in `sensekit bench`)."""

MIN_RECALL = 0.95
"""The full-range detector found every fully visible face of the demo video on x86_64
(media/demo/entrance.json, `detector_recall`); a working install must come close."""

MAX_FALSE_POSITIVE_RATE = 0.02
"""Detections overlapping no known face, per frame with a face in view."""

MIN_EXPECTED_EXPRESSION = 0.8
"""Every bundled face wears the same smile (media/demo/README.md), so the visits the
classifier saw must mostly come out as that expression."""

EXPECTED_EXPRESSION = "happy"

MAX_CLASSES = 16
"""Outputs with at most this many values per row are class probabilities (the detectors'
outputs have thousands of anchors)."""

PROBABILITY_SUM_TOLERANCE = 0.02
"""int8 outputs step by 1/256; seven of them rounding the same way stay within this."""

FLOAT_PROBABILITY_SUM_TOLERANCE = 1e-4
"""The float reference exports (`*_float.tflite`, for `sensekit eval`) end in a float32
softmax: their rows sum to 1 up to float32 rounding."""


@dataclass(frozen=True, slots=True)
class Check:
    name: str
    passed: bool
    detail: str


@dataclass
class SelftestReport:
    checks: list[Check] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    machine: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(check.passed for check in self.checks)

    def add(self, name: str, passed: bool, detail: str) -> None:
        self.checks.append(Check(name, passed, detail))

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "checks": [asdict(check) for check in self.checks],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "machine": self.machine,
        }

    def as_text(self) -> str:
        lines = [f"sensekit selftest on {self.machine.get('summary', '?')}"]
        for check in self.checks:
            lines.append(f"  {'PASS' if check.passed else 'FAIL'}  {check.name}: {check.detail}")
        timing = ", ".join(f"{k} {v:.1f} ms" for k, v in self.timings_ms.items())
        lines.append(f"  timings: {timing}")
        lines.append(
            "selftest passed"
            if self.passed
            else f"selftest FAILED: {sum(not c.passed for c in self.checks)} check(s) failed"
        )
        return "\n".join(lines)


def machine_facts() -> dict[str, str]:
    from sensekit import __version__
    from sensekit.runtime import interpreter_description

    facts = {
        "sensekit": __version__,
        "python": platform.python_version(),
        "machine": platform.machine(),
        "interpreter": interpreter_description(),
        "numpy": np.__version__,
    }
    facts["summary"] = (
        f"{facts['machine']}, Python {facts['python']}, {facts['interpreter']}, "
        f"numpy {facts['numpy']}, sensekit {facts['sensekit']}"
    )
    return facts


def bundled_models() -> list[Path]:
    return sorted(models_dir().rglob("*.tflite"))


def _probe_input(model: TFLiteModel, rng: np.random.Generator) -> list[np.ndarray]:
    """Random inputs in each tensor's own type: a crash or NaN shows on any input."""
    inputs = []
    for spec in model.inputs:
        shape = tuple(max(1, v) for v in spec.shape)
        if np.issubdtype(spec.dtype, np.integer):
            info = np.iinfo(spec.dtype)
            inputs.append(rng.integers(info.min, info.max, shape, endpoint=True).astype(spec.dtype))
        else:
            inputs.append(rng.uniform(-1.0, 1.0, shape).astype(spec.dtype))
    return inputs


def _dequantised(model: TFLiteModel, outputs: list[np.ndarray]) -> list[np.ndarray]:
    values = []
    for spec, output in zip(model.outputs, outputs, strict=True):
        q = spec.quantization
        real = output.astype(np.float64)
        if q.is_quantized:
            real = q.scale * (real - q.zero_point)
        values.append(real)
    return values


def _sum_tolerance(model: TFLiteModel) -> float:
    """int8 rounding for quantized outputs; float32 rounding for the float exports."""
    if any(spec.quantization.is_quantized for spec in model.outputs):
        return PROBABILITY_SUM_TOLERANCE
    return FLOAT_PROBABILITY_SUM_TOLERANCE


def check_models(report: SelftestReport) -> None:
    """Load and invoke every bundled model once."""
    paths = bundled_models()
    report.add("models found", bool(paths), f"{len(paths)} model(s) in {models_dir()}")
    rng = np.random.default_rng(0)
    for path in paths:
        name = str(path.relative_to(models_dir()))
        started = time.perf_counter()
        try:
            model = TFLiteModel(path)
            outputs = _dequantised(model, model.run(_probe_input(model, rng)))
        except ModelError as exc:
            report.add(f"model {name}", False, str(exc))
            continue
        elapsed = (time.perf_counter() - started) * 1000.0
        shapes = ", ".join("x".join(str(v) for v in o.shape) for o in outputs)
        kinds = ", ".join(sorted({str(spec.dtype) for spec in model.inputs}))
        detail = f"loaded and invoked in {elapsed:.0f} ms, {kinds} input, outputs {shapes}"
        problem = _output_problem(outputs, _sum_tolerance(model))
        report.add(f"model {name}", problem is None, detail + (f": {problem}" if problem else ""))


def _output_problem(
    outputs: list[np.ndarray], tolerance: float = PROBABILITY_SUM_TOLERANCE
) -> str | None:
    """Non-finite numbers anywhere, or a class-probability output (a short last axis: the
    7 expressions, 3 arousal levels) whose rows do not sum to 1 within `tolerance`."""
    if not all(np.isfinite(o).all() for o in outputs):
        return "outputs are not finite"
    for output in outputs:
        if output.ndim == 2 and output.shape[1] <= MAX_CLASSES:
            sums = output.sum(axis=1)
            if not np.allclose(sums, 1.0, atol=tolerance):
                return f"class probabilities sum to {sums.tolist()}, not 1"
    return None


@dataclass
class VisionWindow:
    frames: int = 0
    faces_visible: int = 0
    faces_found: int = 0
    false_positives: int = 0
    frames_with_faces: int = 0
    tallies: list[FaceTally] = field(default_factory=list)
    process_ms: float = 0.0


def _match(
    frame: VideoFrame, truth: list[dict[str, Any]], found: np.ndarray, run: VisionWindow
) -> None:
    """Count recall over fully visible faces and detections that match no face at all."""
    visible = [face for face in truth if face["full"]]
    if not truth:
        run.false_positives += len(found)
        return
    run.frames_with_faces += 1
    scale = np.array([frame.width, frame.height] * 2, np.float32)
    all_boxes = np.array([face["box"] for face in truth], np.float32) / scale
    if len(found):
        overlaps = iou_matrix(all_boxes, found)
        run.false_positives += int((overlaps.max(axis=0) < 0.1).sum())
        hits = overlaps[[i for i, face in enumerate(truth) if face["full"]]] >= RECALL_IOU
        run.faces_found += int(hits.any(axis=1).sum())
    run.faces_visible += len(visible)


def run_vision_window(config: Config, truth: dict[str, Any], window_s: float) -> VisionWindow:
    camera = config.cameras[0]
    pipeline = build_vision_pipeline(config, camera)
    aggregator = WindowAggregator(
        camera.name,
        [zone.name for zone in camera.effective_zones()],
        config.aggregation.window_s,
        visit_gap_s=config.tracker.max_gap_s,
    )
    reader = open_reader(camera.name, camera.source, camera.width, camera.height, camera.fps)
    run = VisionWindow()
    last = 0.0
    try:
        for index, frame_truth in enumerate(truth["frames_gt"]):
            item = reader.read()
            if item is None:
                raise SourceError(f"{camera.source}: the video ended at frame {index}")
            image, media_time = item
            timestamp = media_time if media_time is not None else index / float(truth["fps"])
            if timestamp >= window_s:
                break
            frame = VideoFrame(camera.name, index, timestamp, image)
            started = time.perf_counter()
            result, observations = pipeline.process(frame)
            run.tallies += aggregator.add_frame(timestamp, observations)
            run.process_ms += (time.perf_counter() - started) * 1000.0
            boxes = np.array(
                [
                    (f.face.box.xmin, f.face.box.ymin, f.face.box.xmax, f.face.box.ymax)
                    for f in result.faces
                ],
                np.float32,
            ).reshape(-1, 4)
            _match(frame, frame_truth, boxes, run)
            run.frames += 1
            last = timestamp
    finally:
        reader.close()
    run.tallies += aggregator.flush(max(last, window_s))
    return run


def run_voice_window(config: Config, window_s: float) -> tuple[list[VoiceTally], float, float]:
    """The first window of the demo sound; returns its tallies, the analysis time and the
    audio duration analysed."""
    mic = config.microphones[0]
    runtime = build_voice_runtime(config)
    aggregator = VoiceAggregator(
        mic.name, mic.zone, config.aggregation.window_s, voice_latency_s(config)
    )
    source = open_audio_source(
        mic.name, mic.source, mic.sample_rate, realtime=False, start_time=0.0, block_s=mic.block_s
    )
    source.start()
    analysed_s = 0.0
    busy = 0.0
    try:
        while True:
            chunk = source.read(5.0)
            if chunk is None:
                if source.finished:
                    break
                continue
            if chunk.timestamp >= window_s:
                break
            started = time.perf_counter()
            aggregator.add(runtime.pipeline.process(chunk))
            aggregator.heard(chunk.timestamp, chunk.end)
            busy += time.perf_counter() - started
            analysed_s = chunk.end
        if source.error:
            raise SourceError(source.error)
        started = time.perf_counter()
        aggregator.add(runtime.pipeline.finish(mic.name))
        busy += time.perf_counter() - started
    finally:
        source.stop()
    return aggregator.flush(window_s), busy * 1000.0, analysed_s


def check_vision(report: SelftestReport, run: VisionWindow, expected: dict[str, int]) -> None:
    recall = run.faces_found / max(run.faces_visible, 1)
    report.add(
        "face detection",
        run.faces_visible > 0 and recall >= MIN_RECALL,
        f"{run.faces_found}/{run.faces_visible} fully visible faces found (recall {recall:.3f}, "
        f"needs {MIN_RECALL}) in {run.frames} frames",
    )
    false_rate = run.false_positives / max(run.frames_with_faces, 1)
    report.add(
        "false detections",
        false_rate <= MAX_FALSE_POSITIVE_RATE,
        f"{run.false_positives} detection(s) matching no face ({false_rate:.3f} per frame, "
        f"at most {MAX_FALSE_POSITIVE_RATE})",
    )
    counted = {zone: 0 for zone in expected}
    for tally in run.tallies:
        counted[tally.zone] = counted.get(tally.zone, 0) + len({v.person for v in tally.visits})
    report.add(
        "people per zone",
        counted == expected,
        ", ".join(f"{zone} {counted.get(zone, 0)} (truth {n})" for zone, n in expected.items()),
    )
    labels = [
        EXPRESSION_LABELS[int(np.argmax(v.probabilities))]
        for tally in run.tallies
        for v in tally.visits
        if v.probabilities is not None
    ]
    share = labels.count(EXPECTED_EXPRESSION) / max(len(labels), 1)
    report.add(
        "expression",
        bool(labels) and share >= MIN_EXPECTED_EXPRESSION,
        f"{labels.count(EXPECTED_EXPRESSION)}/{len(labels)} classified visits {EXPECTED_EXPRESSION} "
        f"(the demo faces all smile; needs {MIN_EXPECTED_EXPRESSION:.0%})",
    )


def check_voice(
    report: SelftestReport, tallies: list[VoiceTally], bounds: dict[str, Any], window_s: float
) -> None:
    heard = sum(t.windows for t in tallies if t.window_start < window_s)
    low, high = int(bounds["min_windows"]), int(bounds["max_windows"])
    report.add(
        "speech",
        low <= heard <= high,
        f"{heard} speech window(s) in the first {window_s:.0f} s (truth: {bounds['speech_s']} s "
        f"of speech, {low} to {high} windows)",
    )


def check_release(
    report: SelftestReport,
    config: Config,
    faces: list[FaceTally],
    voices: list[VoiceTally],
) -> None:
    """The window through the assembler and the release gate, as the daemon does."""
    assembler = build_assembler(config, grace_s=0.0)
    tallies = assembler.add_faces(config.cameras[0].name, faces)
    tallies += assembler.add_voice(config.microphones[0].name, voices)
    tallies += assembler.flush()
    gate = ReleaseGate(release_policy(config))
    windows: list[ZoneWindow] = [gate.release(tally) for tally in tallies]
    k = config.aggregation.k_threshold
    below_k = [
        f"{w.zone}.{label}={n}"
        for w in windows
        if w.faces is not None
        for label, n in [*w.faces.expressions.items(), ("unclassified", w.faces.unclassified)]
        if 0 < n < k
    ]
    released = sum(w.faces.people for w in windows if w.faces is not None)
    counted = sum(len(t.visits) for t in faces)
    held = gate.held().visits
    report.add(
        "release gate",
        not below_k and released + held == counted,
        f"{released} visit(s) released, {held} held below k={k}, {counted} counted"
        + (f"; below k: {', '.join(below_k)}" if below_k else ""),
    )


@contextmanager
def _scratch_state(config: Config) -> Iterator[Config]:
    """A throw-away state directory: the self-test must not touch a deployed device's spool,
    site statistics or caches."""
    with tempfile.TemporaryDirectory(prefix="sensekit-selftest-") as scratch:
        voice = config.voice.model_copy(update={"numba_cache_dir": Path(scratch) / "numba"})
        yield config.model_copy(update={"state_dir": Path(scratch), "voice": voice})


def run_selftest(progress: Callable[[str], None] = lambda _line: None) -> SelftestReport:
    """All checks; never raises for a failed check (each one is reported)."""
    report = SelftestReport(machine=machine_facts())
    started = time.perf_counter()
    progress("loading every bundled model")
    check_models(report)
    report.timings_ms["models"] = (time.perf_counter() - started) * 1000.0
    truth = json.loads(bundled("media/demo/entrance.json").read_text())
    sound_truth = json.loads(bundled("media/demo/entrance_audio.json").read_text())
    window_s = float(truth["window_s"])
    config = load_config(demo_config_path())
    fast = {"replay": ReplayMode.FAST}
    config = config.model_copy(
        update={
            "cameras": [c.model_copy(update=fast) for c in config.cameras],
            "microphones": [m.model_copy(update=fast) for m in config.microphones],
        }
    )
    expected = {w["zone"]: int(w["people"]) for w in truth["expected_windows"] if w["start_s"] == 0}
    with _scratch_state(config) as config:
        progress(f"the first {window_s:.0f} s of the demo video through the vision path")
        try:
            vision = run_vision_window(config, truth, window_s)
        except (ModelError, SourceError) as exc:
            report.add("vision window", False, str(exc))
            return report
        report.timings_ms["vision_per_frame"] = vision.process_ms / max(vision.frames, 1)
        check_vision(report, vision, expected)
        progress(f"the first {window_s:.0f} s of the demo sound through the voice path")
        try:
            voices, voice_ms, audio_s = run_voice_window(config, window_s)
        except (ModelError, SourceError) as exc:
            report.add("voice window", False, str(exc))
            return report
        report.timings_ms["voice_per_audio_second"] = voice_ms / max(audio_s, 1e-9)
        bounds = next(w for w in sound_truth["expected_voice"] if w["start_s"] == 0)
        check_voice(report, voices, bounds, window_s)
        check_release(report, config, vision.tallies, voices)
    report.timings_ms["total"] = (time.perf_counter() - started) * 1000.0
    return report
