"""The frozen values that cross stage boundaries.

Every stage talks to the next only through these, so that what can travel where is visible in
one file. Images and probabilities are numpy arrays owned by the value: a stage that keeps one
must not write into it.

Geometry is normalised to the frame: x and y in [0, 1] from the top-left corner, so zones and
boxes do not depend on the camera's resolution.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

EXPRESSION_LABELS: tuple[str, ...] = (
    "angry",
    "disgust",
    "fear",
    "happy",
    "sad",
    "surprise",
    "neutral",
)


class DetectorModel(StrEnum):
    """Which BlazeFace: short range for faces near the camera, full range for up to ~5 m."""

    SHORT_RANGE = "short_range"
    FULL_RANGE = "full_range"


@dataclass(frozen=True, slots=True)
class VideoFrame:
    """One decoded frame, copied out of the capture buffer.

    `timestamp` is seconds since the Unix epoch, in the source's own time base: the capture time
    for a live camera, the media time plus the replay's start for a file. Nothing downstream
    reads the clock, so a replay and a live camera run the same code.
    """

    camera: str
    index: int
    timestamp: float
    image: npt.NDArray[np.uint8] = field(repr=False)  # H x W x 3, BGR

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


@dataclass(frozen=True, slots=True)
class Box:
    """An axis-aligned box in normalised frame coordinates."""

    xmin: float
    ymin: float
    xmax: float
    ymax: float

    @property
    def width(self) -> float:
        return self.xmax - self.xmin

    @property
    def height(self) -> float:
        return self.ymax - self.ymin

    @property
    def center(self) -> tuple[float, float]:
        return ((self.xmin + self.xmax) / 2.0, (self.ymin + self.ymax) / 2.0)


@dataclass(frozen=True, slots=True)
class Face:
    """A detected face: where it is, never who it is.

    `keypoints` holds the detector's six points (right eye, left eye, nose tip, mouth centre,
    right ear tragion, left ear tragion) as a 6 x 2 array of normalised (x, y).
    """

    box: Box
    score: float
    keypoints: npt.NDArray[np.float32] = field(repr=False)


@dataclass(frozen=True, slots=True)
class ExpressionScores:
    """Class probabilities for one face, in the order of `EXPRESSION_LABELS`."""

    probabilities: npt.NDArray[np.float32] = field(repr=False)

    @property
    def label(self) -> str:
        return EXPRESSION_LABELS[int(np.argmax(self.probabilities))]


@dataclass(frozen=True, slots=True)
class ClassifiedFace:
    """A face and its expression; `expression` is None when the face was too small to classify."""

    face: Face
    expression: ExpressionScores | None


@dataclass(frozen=True, slots=True)
class FrameResult:
    """What the vision stage made of one frame. Holds no pixels."""

    camera: str
    timestamp: float
    faces: tuple[ClassifiedFace, ...]


@dataclass(frozen=True, slots=True)
class Visit:
    """One person's stay in one zone: a track seen there without a gap longer than the
    tracker's `max_gap_s`. Lives in memory only, between the aggregator and the release gate.

    `person` is the camera's process-local track number, used only to count distinct people
    before anything is released; `probabilities` is the mean over the frames in which the
    face was large enough to classify (None: never classified)."""

    person: int
    probabilities: npt.NDArray[np.float64] | None = field(repr=False)


@dataclass(frozen=True, slots=True)
class FaceTally:
    """The visits that ended in one zone during one window, as seen by its camera. Raw: it
    never leaves the process; the release gate turns it into `FaceCounts`."""

    zone: str
    camera: str
    window_start: float
    window_end: float
    complete: bool
    frames: int
    visits: tuple[Visit, ...]


@dataclass(frozen=True, slots=True)
class FaceCounts:
    """What may be published about a zone's faces in one window: released counts only.

    Every class count (and `unclassified`) is either 0 or covers at least k distinct people;
    `people` is their sum. `mean_probabilities` is over the released classified visits (None
    when there are none, or when noise is added)."""

    camera: str
    frames: int
    people: int
    expressions: dict[str, int]
    unclassified: int
    mean_probabilities: dict[str, float] | None


VOICE_AROUSAL_LABELS: tuple[str, ...] = ("low", "mid", "high")
"""Arousal levels of the voice model, lowest first."""

VOICE_EMOTION_LABELS: tuple[str, ...] = (
    "angry",
    "bored",
    "disgust",
    "fear",
    "happy",
    "neutral",
    "sad",
)
"""The voice model's categories: EmoDB's seven, named with the face vocabulary where they
match (anger→angry, happiness→happy, sadness→sad). EmoDB has boredom ("bored", no face
equivalent) and no surprise."""


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """A block of mono samples from one microphone or audio file.

    `timestamp` is the epoch time of the first sample, in the source's own time base (as for
    `VideoFrame`). Consecutive chunks of a source are contiguous unless the source reports a gap
    (an overflow dropped samples): then the next chunk's timestamp jumps.
    """

    microphone: str
    timestamp: float
    sample_rate: int
    samples: npt.NDArray[np.float32] = field(repr=False)  # 1-D, float32 in [-1, 1]

    @property
    def duration(self) -> float:
        return len(self.samples) / float(self.sample_rate)

    @property
    def end(self) -> float:
        return self.timestamp + self.duration


@dataclass(frozen=True, slots=True)
class VoiceScores:
    """The voice model's two heads for one analysis window."""

    arousal: npt.NDArray[np.float32] = field(repr=False)  # in VOICE_AROUSAL_LABELS order
    emotion: npt.NDArray[np.float32] = field(repr=False)  # in VOICE_EMOTION_LABELS order

    @property
    def arousal_label(self) -> str:
        return VOICE_AROUSAL_LABELS[int(np.argmax(self.arousal))]

    @property
    def emotion_label(self) -> str:
        return VOICE_EMOTION_LABELS[int(np.argmax(self.emotion))]


@dataclass(frozen=True, slots=True)
class VoiceResult:
    """What the voice stage made of one analysis window of speech. Holds no audio."""

    microphone: str
    start: float
    end: float
    scores: VoiceScores

    @property
    def midpoint(self) -> float:
        return (self.start + self.end) / 2.0


@dataclass(frozen=True, slots=True)
class VoiceTally:
    """What the microphones of one zone heard over one window: raw counts of the voiced
    analysis windows (2 s, hop 1 s) whose midpoint fell in this window, by arousal (rows, in
    VOICE_AROUSAL_LABELS order) and category (columns, VOICE_EMOTION_LABELS). Raw: it never
    leaves the process; the release gate turns it into `VoiceCounts`. It measures speech, not
    speakers (nobody is identified, so speakers cannot be counted)."""

    zone: str
    microphones: tuple[str, ...]
    window_start: float
    window_end: float
    complete: bool
    audio_s: float
    counts: npt.NDArray[np.int64] = field(repr=False)  # 3 x 7

    @property
    def windows(self) -> int:
        return int(self.counts.sum())


@dataclass(frozen=True, slots=True)
class VoiceCounts:
    """What may be published about a zone's voice in one window: each class count is 0 or at
    least `k_windows` speech windows; `windows` is the sum of the released arousal counts."""

    microphones: tuple[str, ...]
    audio_s: float
    windows: int
    k_windows: int
    arousal: dict[str, int]
    emotions: dict[str, int]


@dataclass(frozen=True, slots=True)
class ZoneTally:
    """One zone's raw window, camera and microphones joined: the release gate's input.

    `has_camera` says whether a camera covers the zone at all (even if it delivered nothing
    for this window): such a zone's voice is released only together with k people's faces."""

    site: str
    device: str
    zone: str
    window_start: float
    window_end: float
    complete: bool
    has_camera: bool
    faces: FaceTally | None
    voice: VoiceTally | None


@dataclass(frozen=True, slots=True)
class ZoneWindow:
    """The released aggregate of one zone over one window: the only thing a publisher accepts.

    `faces` is None when the zone has no camera (or its camera delivered nothing for this
    window); `voice` likewise for microphones. `dp_epsilon` is set when noise was added."""

    site: str
    device: str
    zone: str
    window_start: float
    window_end: float
    complete: bool
    k_threshold: int
    dp_epsilon: float | None
    faces: FaceCounts | None
    voice: VoiceCounts | None
