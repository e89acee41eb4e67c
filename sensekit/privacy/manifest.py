"""The privacy manifest: a retained MQTT message saying what this device measures and withholds.

The visitor notice is for people in front of the camera; the manifest is the same facts for
machines and auditors. Retained on `<prefix>/<site>/<device>/privacy`, it lets a dashboard, a
data protection officer or a monitoring job check from the broker alone which thresholds,
masks and opening hours a device runs with, without access to the device or its config file.
Schema: sensekit/schemas/privacy.schema.json.
"""

from __future__ import annotations

from typing import Any

from sensekit import __version__
from sensekit.privacy.facts import PrivacyFacts
from sensekit.publish.payloads import utc_iso

PRIVACY_SCHEMA = "sensekit.privacy/1"


def manifest_payload(facts: PrivacyFacts, timestamp: float) -> dict[str, Any]:
    """The manifest for `facts`, stamped with `timestamp` (when it was built: a later config
    reload that changes the facts builds a new one)."""
    schedule = facts.schedule
    return {
        "schema": PRIVACY_SCHEMA,
        "site": facts.site,
        "device": facts.device,
        "timestamp": utc_iso(timestamp),
        "version": __version__,
        "controller": facts.controller,
        "contact": facts.contact,
        "measures": {
            "faces": (
                {"people_counted": True, "expressions": list(facts.expression_labels)}
                if facts.faces
                else None
            ),
            "voice": (
                {
                    "arousal": list(facts.arousal_labels),
                    "emotions": list(facts.voice_emotion_labels),
                    "zones": list(facts.voice_zones),
                }
                if facts.voice
                else None
            ),
        },
        "zones": list(facts.zones),
        "masks": {camera: list(names) for camera, names in facts.masks.items()},
        "k_threshold": facts.k_threshold,
        "k_windows": facts.k_windows,
        "window_s": facts.window_s,
        "dp_epsilon": facts.dp_epsilon,
        "schedule": {
            "timezone": schedule.timezone,
            "always_on": schedule.always_on,
            "hours": [
                {"days": list(span.days), "open": span.open, "close": span.close}
                for span in schedule.hours
            ],
            "closed_dates": list(schedule.closed_dates),
        },
        "recorded": facts.recorded,
        "raw_data_sent": facts.raw_data_sent,
        "identified": facts.identified,
        "tracked_across_visits": facts.tracked_across_visits,
        "counts_only": facts.counts_only,
    }
