"""The net emotion score: one number per zone and window that an operator can act on.

Customer-experience practice runs on one number per touchpoint (the Net Promoter Score:
promoters minus detractors, as a share of everyone asked). The net emotion score is the same
idea applied to the published facial-expression counts:

    score = 100 × (positive − negative) / classified

- positive: `happy`;
- negative: `angry`, `disgust`, `fear`, `sad`;
- in the denominator but on neither side: `neutral` (no emotion shown, like NPS's passives)
  and `surprise` (its valence is ambiguous: a pleasant and an unpleasant surprise look alike);
- not counted at all: `unclassified` visits (the face was never large, sure or frontal enough
  to read: they say nothing about emotion).

It ranges from −100 (everyone negative) to +100 (everyone happy) and is undefined (None) when
no classified visit was released. It is computed only from counts that were already published,
so it reveals nothing the counts do not (and with noise on, it is post-processing of the noisy
counts). Over several windows, add the counts first and score the sums (`net_emotion_score` of
the summed expressions): an average of window scores would weigh a window of 5 people like one
of 50.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

POSITIVE_EXPRESSIONS: tuple[str, ...] = ("happy",)
NEGATIVE_EXPRESSIONS: tuple[str, ...] = ("angry", "disgust", "fear", "sad")
NEITHER_EXPRESSIONS: tuple[str, ...] = ("neutral", "surprise")


def net_emotion_score(expressions: Mapping[str, int | float]) -> float | None:
    """Score of released expression counts, rounded to 0.1; None when no visit is classified."""
    classified = sum(max(float(count), 0.0) for count in expressions.values())
    if classified <= 0:
        return None
    positive = sum(max(float(expressions.get(name, 0)), 0.0) for name in POSITIVE_EXPRESSIONS)
    negative = sum(max(float(expressions.get(name, 0)), 0.0) for name in NEGATIVE_EXPRESSIONS)
    return round(100.0 * (positive - negative) / classified, 1)


def summed_expressions(windows: Iterable[Mapping[str, int | float]]) -> dict[str, float]:
    """Expression counts added over windows, for scoring a span longer than one window."""
    total: dict[str, float] = {}
    for expressions in windows:
        for name, count in expressions.items():
            total[name] = total.get(name, 0.0) + float(count)
    return total
