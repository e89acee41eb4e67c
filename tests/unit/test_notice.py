"""The visitor notice: every example config renders in every language and format, states the
configured facts, refuses to exist without a controller and a contact, and escapes values."""

from __future__ import annotations

import html
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sensekit.cli import main
from sensekit.config import load_config, parse_config
from sensekit.privacy.facts import PrivacyFacts, privacy_facts
from sensekit.privacy.notice import (
    FORMATS,
    LANGUAGES,
    WIDTH,
    IncompleteNotice,
    render_notice,
)

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))

MINIMAL = """\
site: shop-1
device: cam-1
cameras:
  - name: front
    source: 0
"""


def facts_of(path: Path) -> PrivacyFacts:
    return privacy_facts(load_config(path))


def flat(text: str) -> str:
    """Whitespace (wrapping, non-breaking spaces) folded, so a fact split over two lines is
    still found."""
    return " ".join(text.split())


def test_there_are_example_configs() -> None:
    assert {path.stem for path in CONFIGS} >= {"demo", "entrance", "kiosk"}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("path", CONFIGS, ids=lambda path: path.stem)
def test_every_example_config_renders_with_its_facts(path: Path, lang: str, fmt: str) -> None:
    facts = facts_of(path)
    text = render_notice(facts, lang, fmt)  # type: ignore[arg-type]
    shown = flat(html.unescape(text) if fmt == "html" else text.replace("\\", ""))
    assert facts.controller and facts.contact
    assert facts.controller in shown
    assert facts.contact in shown
    at_least = {"en": "at least {} people;", "fr": "au moins {} personnes ;"}[lang]
    assert at_least.format(facts.k_threshold) in shown
    for zone in facts.zones:
        assert zone in shown
    for span in facts.schedule.hours:
        opening = span.open if lang == "en" else f"{int(span.open[:2])} h"
        assert opening in shown
    if facts.voice:
        speech = {"en": "at least {} short stretches", "fr": "au moins {} courts extraits"}[lang]
        assert speech.format(facts.k_windows) in shown
    if facts.dp_epsilon is not None:
        assert "ε" in shown
    if lang == "fr":
        assert "mesure anonyme des émotions" in shown.lower()  # upper case in plain text
        assert "Aucune image ni aucun son n'est enregistré" in shown
        assert "Questions, oppositions" in shown
        assert "Anonymous" not in shown and "nobody" not in shown.lower()
    else:
        assert "anonymous emotion measurement" in shown.lower()
        assert "No image or sound is recorded, stored or sent." in shown
        assert f"Questions, objections: {facts.contact}" in shown
    if fmt == "text":
        assert max(len(line) for line in text.splitlines()) <= WIDTH
    if fmt == "html":
        assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")
        assert f'<html lang="{lang}">' in text
        assert "@page { size: A4" in text


def test_the_entrance_notice_says_what_its_config_says() -> None:
    text = flat(render_notice(facts_of(ROOT / "configs" / "entrance.yaml"), "en", "text"))
    assert "Monday to Saturday: 09:00–20:00" in text
    assert "Europe/Paris" in text
    assert "25 December 2026" in text and "1 January 2027" in text
    assert "staff areas" in text  # it has a mask over the cash desk
    assert "microphone" not in text.replace("camera is switched off", "")  # no voice there
    assert "period of 1 minute" in text
    assert "noise" not in text  # no dp_epsilon


def test_the_french_kiosk_notice() -> None:
    text = flat(render_notice(facts_of(ROOT / "configs" / "kiosk.yaml"), "fr", "text"))
    assert "Du lundi au vendredi : 8 h 30 – 19 h 30" in text
    assert "Samedi : 10 h – 18 h" in text
    assert "la caméra et le microphone sont éteints" in text
    assert "ton de la voix" in text
    assert "au moins 10 courts extraits de parole" in text
    assert "confidentialité différentielle, ε = 1 par période" in text
    assert "par période d'une minute" in text


def test_no_hours_means_always_and_no_masks_means_no_exclusion_line() -> None:
    facts = privacy_facts(
        parse_config(
            MINIMAL
            + "aggregation: {k_threshold: 8, window_s: 300}\n"
            + "privacy:\n  controller: Shop\n  contact: a@b.example\n"
        )
    )
    text = flat(render_notice(facts, "en", "text"))
    assert "per period of 5 minutes" in text and "at least 8 people" in text
    assert "par période de 5 minutes" in flat(render_notice(facts, "fr", "text"))
    assert "At all times." in text
    assert "switched off" not in text
    assert "staff" not in text


def test_closed_dates_without_hours() -> None:
    config = parse_config(
        MINIMAL
        + "schedule: {timezone: Europe/Paris, closed_dates: [2026-05-01]}\n"
        + "privacy: {controller: Shop, contact: a@b.example}\n"
    )
    facts = privacy_facts(config)
    assert not facts.schedule.always_on
    assert "At all times, except on: 1 May 2026." in flat(render_notice(facts, "en", "text"))
    assert "En permanence, sauf les : 1er mai 2026." in flat(render_notice(facts, "fr", "text"))


def test_a_voice_only_device() -> None:
    config = parse_config(
        textwrap.dedent(
            """\
            site: shop-1
            microphones:
              - name: mic
                zone: counter
            privacy: {controller: Shop, contact: a@b.example, dp_epsilon: 0.5}
            """
        )
    )
    facts = privacy_facts(config)
    assert not facts.faces and facts.voice and facts.zones == ("counter",)
    text = flat(render_notice(facts, "fr", "text"))
    assert text.count("microphone") >= 2 and "caméra" not in text.replace("là où une caméra", "")
    assert "ε = 0,5" in text


def test_html_escapes_every_value() -> None:
    config = parse_config(
        MINIMAL
        + "privacy:\n"
        + "  controller: \"<script>alert('x')</script> & Co\"\n"
        + '  contact: "mailto:a@b.example?subject=<b>"\n'
    )
    for lang in LANGUAGES:
        page = render_notice(privacy_facts(config), lang, "html")
        assert "<script>" not in page and "<b>" not in page
        assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; Co" in page
        markdown = render_notice(privacy_facts(config), lang, "markdown")
        assert "<script>" not in markdown and "\\<script\\>" in markdown


def test_render_refuses_without_controller_or_contact() -> None:
    with pytest.raises(IncompleteNotice) as info:
        render_notice(privacy_facts(parse_config(MINIMAL)))
    assert info.value.missing == ("privacy.controller", "privacy.contact")


def test_cli_without_contact_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "shop.yaml"
    config.write_text(MINIMAL + "privacy:\n  controller: Shop\n")
    assert main(["notice", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(f"{config}:6: privacy.contact: not set")
    assert "privacy.controller" not in captured.err


def test_cli_reports_an_invalid_config_as_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(MINIMAL + "aggregation:\n  k_treshold: 5\n")
    assert main(["notice", "--config", str(config)]) == 2
    assert f"{config}:7: aggregation.k_treshold: unknown key" in capsys.readouterr().err


def test_cli_writes_the_notice_to_a_file(tmp_path: Path) -> None:
    output = tmp_path / "notice.html"
    config = ROOT / "configs" / "entrance.yaml"
    argv = ["notice", "-c", str(config), "--lang", "fr", "--format", "html", "-o", str(output)]
    assert main(argv) == 0
    page = output.read_text(encoding="utf-8")
    assert '<html lang="fr">' in page and "Mesure anonyme des émotions" in page


def test_the_installed_command(tmp_path: Path) -> None:
    """Through `python -m sensekit`, as an operator runs it: exit code and streams."""
    config = tmp_path / "shop.yaml"
    config.write_text(MINIMAL)
    result = subprocess.run(
        [sys.executable, "-m", "sensekit", "notice", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "privacy.controller: not set" in result.stderr
    assert "privacy.contact: not set" in result.stderr
    good = subprocess.run(
        [sys.executable, "-m", "sensekit", "notice", "-c", str(ROOT / "configs" / "demo.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert good.returncode == 0, good.stderr
    assert good.stdout.startswith("ANONYMOUS EMOTION MEASUREMENT\n")
