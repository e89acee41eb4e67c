"""Drawing a `DayTrend` as a PNG an operator can read at a glance.

Two panels on one time axis: the net emotion score per bucket on a fixed −100…+100 scale (so
two days' plots compare by eye), and the people per bucket underneath (a score from 6 people
means less than one from 60). Buckets without classified visits are gaps, never zeros.
matplotlib is imported here only, with the Agg backend: the daemon never needs it.
"""

from __future__ import annotations

import math
import textwrap
from datetime import timedelta
from pathlib import Path

from sensekit.dashboards.report import DayTrend, format_score

FIGURE_INCHES = (12.0, 7.5)
DPI = 100
FIGURE_PIXELS = (round(FIGURE_INCHES[0] * DPI), round(FIGURE_INCHES[1] * DPI))
"""Width and height of the PNG, in pixels."""

POSITIVE_COLOUR = "#1a9850"
NEGATIVE_COLOUR = "#d73027"
NEUTRAL_COLOUR = "#636363"
LINE_COLOUR = "#4d4d4d"
BAR_COLOUR = "#6baed6"
UNCLASSIFIED_COLOUR = "#cfcfcf"


def footnote(trend: DayTrend) -> str:
    """What the score means, in words, and what the counts already went through."""
    k = "/".join(str(k) for k in trend.k_thresholds) or "?"
    text = (
        "Net emotion score = 100 × (happy − (angry + disgust + fear + sad)) / classified "
        "visits, from the summed counts of each bucket (not an average of window scores). "
        "Positive: happy. Negative: angry, disgust, fear, sad. Neutral and surprise count in "
        "the denominator only; unclassified visits (face never readable) are left out. Only "
        f"counts the device had already released (each class 0 or at least k = {k} people) are "
        "used. A gap in the line: no classified visit in that bucket. Visits are counted in the "
        "bucket of the window that released them."
    )
    if trend.noisy_windows:
        epsilons = ", ".join(f"{e:g}" for e in trend.dp_epsilons)
        text += (
            f" Noise was added on the device (ε = {epsilons}) to {trend.noisy_windows} of "
            f"{trend.windows} windows: their counts are approximate."
        )
    return textwrap.fill(text, width=150)


def _hour_ticks(trend: DayTrend) -> tuple[list[float], list[str]]:
    """Tick positions in hours since local midnight, labelled with the local clock time (which
    repeats or skips an hour on a daylight-saving day)."""
    length_h = (trend.day_end - trend.day_start).total_seconds() / 3600
    step = 1 if length_h <= 8 else 2
    positions = [float(h) for h in range(0, math.floor(length_h) + 1, step)]
    labels = []
    for hours in positions:
        moment = (trend.day_start + timedelta(hours=hours)).astimezone(trend.day_start.tzinfo)
        labels.append(f"{moment:%H:%M}")
    return positions, labels


def plot_day(trend: DayTrend, output: Path) -> None:
    """Write the day's plot as a PNG of `FIGURE_PIXELS`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    origin = trend.day_start.timestamp()
    lefts = [(b.start.timestamp() - origin) / 3600 for b in trend.buckets]
    widths = [(b.end - b.start).total_seconds() / 3600 for b in trend.buckets]
    centres = [left + width / 2 for left, width in zip(lefts, widths, strict=True)]
    scores = [math.nan if b.score is None else b.score for b in trend.buckets]
    day_length = (trend.day_end - trend.day_start).total_seconds() / 3600

    figure, (score_axes, people_axes) = plt.subplots(
        2,
        1,
        sharex=True,
        figsize=FIGURE_INCHES,
        dpi=DPI,
        gridspec_kw={"height_ratios": [3, 1.3], "hspace": 0.08},
    )
    figure.subplots_adjust(left=0.07, right=0.98, top=0.85, bottom=0.21)

    # the score -------------------------------------------------------------------------------
    score_axes.axhspan(0, 100, color=POSITIVE_COLOUR, alpha=0.05, zorder=0)
    score_axes.axhspan(-100, 0, color=NEGATIVE_COLOUR, alpha=0.05, zorder=0)
    score_axes.axhline(0, color="black", linewidth=1.0, zorder=1)
    if trend.score is not None:
        score_axes.axhline(
            trend.score, color=NEUTRAL_COLOUR, linewidth=1.0, linestyle="--", zorder=1
        )
        score_axes.annotate(
            f"day {format_score(trend.score)}".replace("-", "−"),
            xy=(1.0, trend.score),
            xycoords=("axes fraction", "data"),
            xytext=(-4, -4 if trend.score > 80 else 4),
            textcoords="offset points",
            ha="right",
            va="top" if trend.score > 80 else "bottom",
            fontsize=9,
            color=NEUTRAL_COLOUR,
        )
    score_axes.plot(centres, scores, color=LINE_COLOUR, linewidth=1.6, zorder=2)
    colours = [
        NEUTRAL_COLOUR if s == 0 else POSITIVE_COLOUR if s > 0 else NEGATIVE_COLOUR
        for s in (0.0 if math.isnan(s) else s for s in scores)
    ]
    pixels_per_hour = FIGURE_PIXELS[0] * 0.91 / day_length
    wide = min(widths) * pixels_per_hour >= 4  # else white edges would hide thin bars
    edge = 0.6 if wide else 1.0
    score_axes.scatter(
        centres, scores, c=colours, s=42, zorder=3, edgecolors="white", linewidths=0.8
    )
    scored = [(s, c) for s, c in zip(scores, centres, strict=True) if not math.isnan(s)]
    if len(scored) > 1:
        low, where = min(scored)
        if low < (trend.score if trend.score is not None else 0.0):
            score_axes.annotate(
                f"lowest {low:+.0f}".replace("-", "−"),
                xy=(where, low),
                xytext=(0, -16),
                textcoords="offset points",
                ha="center",
                va="top",
                fontsize=9,
                color=NEGATIVE_COLOUR if low < 0 else NEUTRAL_COLOUR,
            )
    score_axes.set_ylim(-105, 105)
    score_axes.set_yticks([-100, -50, 0, 50, 100])
    score_axes.set_ylabel("net emotion score")
    score_axes.grid(axis="both", color="#dddddd", linewidth=0.6, zorder=0)
    score_axes.set_axisbelow(True)
    score_axes.text(
        0.005,
        0.98,
        "happier",
        transform=score_axes.transAxes,
        va="top",
        fontsize=9,
        color=POSITIVE_COLOUR,
        bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1.5},
    )
    score_axes.text(
        0.005,
        0.02,
        "unhappier",
        transform=score_axes.transAxes,
        va="bottom",
        fontsize=9,
        color=NEGATIVE_COLOUR,
        bbox={"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1.5},
    )
    if all(math.isnan(s) for s in scores):
        score_axes.text(
            0.5,
            0.5,
            "no classified visits this day",
            transform=score_axes.transAxes,
            ha="center",
            va="center",
            fontsize=13,
            color=NEUTRAL_COLOUR,
        )
    score_axes.legend(
        handles=[
            Line2D(
                [],
                [],
                color=LINE_COLOUR,
                marker="o",
                markerfacecolor=POSITIVE_COLOUR,
                markeredgecolor="white",
                label=f"score per {trend.bucket_minutes} min",
            ),
            Line2D([], [], color=NEUTRAL_COLOUR, linestyle="--", label="whole day"),
        ],
        loc="lower right",
        bbox_to_anchor=(1.0, 1.0),
        ncols=2,
        fontsize=9,
        frameon=False,
    )

    # the people ------------------------------------------------------------------------------
    classified = [b.classified for b in trend.buckets]
    unclassified = [b.unclassified for b in trend.buckets]
    people_axes.bar(
        lefts,
        classified,
        width=widths,
        align="edge",
        color=BAR_COLOUR,
        edgecolor="white" if wide else BAR_COLOUR,
        linewidth=edge,
        label="classified",
    )
    people_axes.bar(
        lefts,
        unclassified,
        bottom=classified,
        width=widths,
        align="edge",
        color=UNCLASSIFIED_COLOUR,
        edgecolor="white" if wide else UNCLASSIFIED_COLOUR,
        linewidth=edge,
        label="unclassified",
    )
    people_axes.legend(loc="upper left", fontsize=9, framealpha=0.9, ncols=2)
    people = [b.people for b in trend.buckets]
    people_axes.set_ylabel("people")
    people_axes.set_ylim(0, max(max(people, default=0), 1) * 1.3)
    people_axes.grid(axis="y", color="#dddddd", linewidth=0.6)
    people_axes.set_axisbelow(True)
    people_axes.yaxis.get_major_locator().set_params(integer=True)
    positions, labels = _hour_ticks(trend)
    people_axes.set_xticks(positions, labels)
    people_axes.set_xlim(0, day_length)
    people_axes.set_xlabel(f"local time ({trend.timezone})")

    # title and footnote ----------------------------------------------------------------------
    zone = trend.zone
    figure.suptitle(
        f"Net emotion score: {zone.zone}  ·  {zone.site} / {zone.device}  ·  "
        f"{trend.day:%A %d %B %Y}",
        x=0.07,
        y=0.975,
        ha="left",
        fontsize=15,
        fontweight="bold",
    )
    summary = (
        f"day score {format_score(trend.score)}   ·   {trend.people} people "
        f"({trend.classified} classified)   ·   {trend.windows} windows   ·   "
        f"time zone {trend.timezone}"
    )
    figure.text(0.07, 0.905, summary, ha="left", fontsize=11, color="#333333")
    figure.text(
        0.07,
        0.015,
        footnote(trend),
        ha="left",
        va="bottom",
        fontsize=9,
        color="#444444",
        linespacing=1.4,
    )
    if trend.noisy_windows:
        figure.text(
            0.98,
            0.905,
            "noisy counts (differential privacy)",
            ha="right",
            fontsize=10,
            color="#b35806",
            fontweight="bold",
        )

    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output, dpi=DPI, format="png")
    plt.close(figure)
