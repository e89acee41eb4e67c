"""What a device does with people, as plain data: the one source for the visitor notice and the
retained privacy manifest.

Both documents must say the same thing, and both must say what the configuration actually
makes the device do. Deriving them from one value built from the loaded `Config` (never from a
second hand-written description) keeps the sign at the door, the manifest a dashboard reads and
the running daemon in agreement. The value holds no logic beyond that derivation, so the
renderers stay pure functions of it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from sensekit.config import Config
from sensekit.types import EXPRESSION_LABELS, VOICE_AROUSAL_LABELS, VOICE_EMOTION_LABELS


@dataclass(frozen=True, slots=True)
class HoursSpan:
    """One span of opening hours: `close` earlier than `open` runs past midnight."""

    days: tuple[str, ...]
    """Weekday codes, as in the config: mon, tue, wed, thu, fri, sat, sun."""
    open: str
    """HH:MM, local time."""
    close: str
    """HH:MM, local time; 24:00 for midnight."""


@dataclass(frozen=True, slots=True)
class ScheduleFacts:
    """When the camera and microphone may be open; outside these hours they are closed."""

    timezone: str
    hours: tuple[HoursSpan, ...]
    closed_dates: tuple[str, ...]
    """Whole days closed, as YYYY-MM-DD, in the order configured."""

    @property
    def always_on(self) -> bool:
        """Neither opening hours nor closed dates: sensing is allowed at every instant. (Closed
        dates without hours mean open all day except on those dates.)"""
        return not self.hours and not self.closed_dates


@dataclass(frozen=True, slots=True)
class PrivacyFacts:
    """What one device measures, where, when, under which release rules, and what it never
    does. Built by `privacy_facts`; every field is either a configured value or a property of
    the code that no setting can change (the last group)."""

    site: str
    device: str
    controller: str | None
    """The organisation responsible for the processing (GDPR controller); None when unset."""
    contact: str | None
    """Where visitors send questions and objections; None when unset."""
    faces: bool
    """A camera is configured: facial expression is classified and people are counted."""
    voice: bool
    """A microphone is configured: tone of voice (arousal and category) is classified."""
    zones: tuple[str, ...]
    """Every zone counted: the cameras' zones, then zones heard only by a microphone."""
    camera_zones: tuple[str, ...]
    """The zones a camera watches (empty without cameras)."""
    voice_zones: tuple[str, ...]
    """The zones a microphone hears (empty without microphones)."""
    masks: Mapping[str, tuple[str, ...]]
    """Camera name -> names of its exclusion masks; only cameras that have masks appear."""
    k_threshold: int
    k_windows: int | None
    """Speech windows a voice breakdown needs; None without microphones (it would mean nothing)."""
    window_s: int
    dp_epsilon: float | None
    schedule: ScheduleFacts
    expression_labels: tuple[str, ...] = EXPRESSION_LABELS
    arousal_labels: tuple[str, ...] = VOICE_AROUSAL_LABELS
    voice_emotion_labels: tuple[str, ...] = VOICE_EMOTION_LABELS
    # Properties of the code, not settings: there is no option that turns any of these on.
    recorded: bool = False
    """No image or sound is written to disk or kept beyond its analysis."""
    raw_data_sent: bool = False
    """No frame, crop, audio, embedding or track leaves the process."""
    identified: bool = False
    """No face or voice is matched against anyone, and no template is computed."""
    tracked_across_visits: bool = False
    """A person is followed only while continuously in view, never from one visit to the next."""
    counts_only: bool = True
    """What is published is per-zone, per-window counts."""

    @property
    def has_masks(self) -> bool:
        return any(self.masks.values())

    @property
    def voice_with_camera(self) -> bool:
        """Some microphone hears a zone a camera also covers: there, voice results are released
        only in a window whose faces released at least k_threshold people."""
        return any(zone in self.camera_zones for zone in self.voice_zones)


def privacy_facts(config: Config) -> PrivacyFacts:
    """The facts a notice and a manifest state about the device `config` describes."""
    camera_zones = [zone.name for camera in config.cameras for zone in camera.effective_zones()]
    voice_zones = list(dict.fromkeys(mic.zone for mic in config.microphones))
    zones = camera_zones + [zone for zone in voice_zones if zone not in camera_zones]
    masks = {
        camera.name: tuple(mask.name for mask in camera.masks)
        for camera in config.cameras
        if camera.masks
    }
    schedule = config.schedule
    return PrivacyFacts(
        site=config.site,
        device=config.device,
        controller=config.privacy.controller,
        contact=config.privacy.contact,
        faces=bool(config.cameras),
        voice=bool(config.microphones),
        zones=tuple(zones),
        camera_zones=tuple(camera_zones),
        voice_zones=tuple(voice_zones),
        masks=MappingProxyType(masks),
        k_threshold=config.aggregation.k_threshold,
        k_windows=config.voice.k_windows if config.microphones else None,
        window_s=config.aggregation.window_s,
        dp_epsilon=config.privacy.dp_epsilon,
        schedule=ScheduleFacts(
            timezone=schedule.timezone,
            hours=tuple(
                HoursSpan(tuple(str(day) for day in span.days), span.open, span.close)
                for span in schedule.hours
            ),
            closed_dates=tuple(day.isoformat() for day in schedule.closed_dates),
        ),
    )
