"""On a real device only (SENSEKIT_HARDWARE=1): a real microphone delivers stamped, contiguous
audio. SENSEKIT_TEST_MICROPHONE picks the device (an index or part of its name; default: the
system's default input)."""

from __future__ import annotations

import itertools
import os
import time

import numpy as np
import pytest

from sensekit.sources.microphone import MicrophoneSource

pytestmark = pytest.mark.hardware


def test_a_real_microphone_delivers_contiguous_stamped_audio() -> None:
    device = os.environ.get("SENSEKIT_TEST_MICROPHONE") or None
    microphone = MicrophoneSource("hw", device, 16000)
    before = time.time()
    microphone.start()
    chunks = []
    try:
        while sum(len(c.samples) for c in chunks) < 2 * 16000:
            chunk = microphone.read(5.0)
            assert chunk is not None, microphone.error
            chunks.append(chunk)
    finally:
        microphone.stop()
    assert before - 1.0 <= chunks[0].timestamp <= time.time()  # the epoch clock's time base
    for earlier, later in itertools.pairwise(chunks):
        assert later.timestamp == pytest.approx(earlier.end, abs=1e-6)
    samples = np.concatenate([c.samples for c in chunks])
    assert samples.dtype == np.float32 and np.abs(samples).max() <= 1.0
    assert microphone.stats()["dropped_s"] == 0.0
