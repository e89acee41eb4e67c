"""Joins what the cameras saw and the microphones heard into one raw tally per zone and window.
Nothing reaches a publisher except through here and then the release gate.

A zone's sources run at their own pace (a replay decodes video faster than it analyses audio,
a live microphone reports a window later than the camera), so the part that arrives first
waits for the others. A source that ends or fails stops being waited for: its zone's windows
go out with what the other sources delivered, and a source that comes back is waited for
again. On a live device a window still incomplete `grace_s` after its end goes out anyway.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from sensekit.types import FaceTally, VoiceTally, ZoneTally

log = logging.getLogger(__name__)


@dataclass(slots=True)
class _Pending:
    faces: FaceTally | None = None
    voices: dict[str, VoiceTally] = field(default_factory=dict)
    delivered: set[str] = field(default_factory=set)


class WindowAssembler:
    def __init__(
        self,
        site: str,
        device: str,
        zone_sources: Mapping[str, Iterable[str]],
        camera_zones: Iterable[str],
        grace_s: float = 30.0,
    ) -> None:
        """`zone_sources`: for every zone, the names of the cameras and microphones feeding it;
        `camera_zones`: the zones a camera covers."""
        self.site, self.device = site, device
        self.grace_s = grace_s
        self.zone_sources = {zone: frozenset(names) for zone, names in zone_sources.items()}
        self.camera_zones = frozenset(camera_zones)
        self._absent: set[str] = set()
        self._pending: dict[tuple[str, float], _Pending] = {}

    def add_faces(self, camera: str, windows: Iterable[FaceTally]) -> list[ZoneTally]:
        out: list[ZoneTally] = []
        for window in windows:
            pending = self._slot(window.zone, window.window_start)
            pending.faces = window
            pending.delivered.add(camera)
            out += self._ready(window.zone, window.window_start)
        return out

    def add_voice(self, microphone: str, windows: Iterable[VoiceTally]) -> list[ZoneTally]:
        out: list[ZoneTally] = []
        for window in windows:
            pending = self._slot(window.zone, window.window_start)
            pending.voices[microphone] = window
            pending.delivered.add(microphone)
            out += self._ready(window.zone, window.window_start)
        return out

    def source_absent(self, source: str) -> list[ZoneTally]:
        """`source` will deliver nothing for now (ended, failed): stop waiting for it."""
        self._absent.add(source)
        out: list[ZoneTally] = []
        for zone, start in sorted(self._pending, key=lambda key: key[1]):
            out += self._ready(zone, start)
        return out

    def source_present(self, source: str) -> None:
        self._absent.discard(source)

    def expire(self, now: float) -> list[ZoneTally]:
        """Live devices: publish windows whose slowest source is more than `grace_s` late."""
        out: list[ZoneTally] = []
        for key in sorted(self._pending, key=lambda key: key[1]):
            pending = self._pending[key]
            end = _end_of(pending)
            if end is not None and now > end + self.grace_s:
                missing = self.zone_sources.get(key[0], frozenset()) - pending.delivered
                log.warning(
                    "zone %s: publishing a window without %s (no data %.0f s after its end)",
                    key[0],
                    ", ".join(sorted(missing)) or "?",
                    now - end,
                )
                out.append(self._emit(key))
        return out

    def flush(self) -> list[ZoneTally]:
        """Shutdown: everything pending goes out with what it has."""
        return [self._emit(key) for key in sorted(self._pending, key=lambda key: key[1])]

    @property
    def pending(self) -> int:
        return len(self._pending)

    # ---------------------------------------------------------------------------------------

    def _slot(self, zone: str, start: float) -> _Pending:
        return self._pending.setdefault((zone, start), _Pending())

    def _ready(self, zone: str, start: float) -> list[ZoneTally]:
        key = (zone, start)
        pending = self._pending.get(key)
        if pending is None:
            return []
        waiting = self.zone_sources.get(zone, frozenset()) - pending.delivered - self._absent
        return [] if waiting else [self._emit(key)]

    def _emit(self, key: tuple[str, float]) -> ZoneTally:
        pending = self._pending.pop(key)
        zone, start = key
        voice = _merge_voice(list(pending.voices.values()))
        faces = pending.faces
        parts: list[FaceTally | VoiceTally] = [p for p in (faces, voice) if p is not None]
        return ZoneTally(
            site=self.site,
            device=self.device,
            zone=zone,
            window_start=start,
            window_end=max(p.window_end for p in parts),
            complete=all(p.complete for p in parts),
            has_camera=zone in self.camera_zones,
            faces=faces,
            voice=voice,
        )


def _merge_voice(windows: list[VoiceTally]) -> VoiceTally | None:
    if not windows:
        return None
    first = windows[0]
    return VoiceTally(
        zone=first.zone,
        microphones=tuple(sorted(m for w in windows for m in w.microphones)),
        window_start=first.window_start,
        window_end=max(w.window_end for w in windows),
        complete=all(w.complete for w in windows),
        audio_s=round(sum(w.audio_s for w in windows), 3),
        counts=sum((w.counts for w in windows[1:]), start=first.counts.copy()),
    )


def _end_of(pending: _Pending) -> float | None:
    ends = [w.window_end for w in pending.voices.values()]
    if pending.faces is not None:
        ends.append(pending.faces.window_end)
    return max(ends) if ends else None
