"""The visitor notice: the sign at the entrance that tells people what the device does.

People must learn that emotions are measured before they walk into the camera's view, in words
they can read from a few steps away, in their language. The notice is built only from
`PrivacyFacts` (themselves built from the running config), so it cannot promise a threshold,
an opening time or an exclusion the device does not apply.

Rendering is two steps, both pure: `notice_document` turns facts and a language into a neutral
document (title, intro, sections of lines, the questions line, a footer), and one small writer
per format lays it out. The wording lives in one dict per language; no template engine, so the
sign can be regenerated on the device itself with nothing but sensekit installed. Values are
escaped by the writers (HTML entities, Markdown backslashes), never trusted.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Literal

from sensekit.privacy.facts import HoursSpan, PrivacyFacts
from sensekit.privacy.schedule import day_runs

Language = Literal["en", "fr"]
Format = Literal["text", "markdown", "html"]
LANGUAGES: tuple[Language, ...] = ("en", "fr")
FORMATS: tuple[Format, ...] = ("text", "markdown", "html")

WIDTH = 72
"""Columns of the plain-text notice."""

WEEK = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NBSP = "\u00a0"
"""French puts a non-breaking space before ':'; it also keeps the wrapper from orphaning it."""

REQUIRED_KEYS = ("privacy.controller", "privacy.contact")
"""A notice that does not say who is responsible and whom to ask is no notice at all."""

TEXTS: dict[Language, dict[str, str]] = {
    "en": {
        "title": "Anonymous emotion measurement",
        "intro_faces": "A camera here measures facial expressions anonymously.",
        "intro_voice": "A microphone here measures tone of voice anonymously.",
        "intro_both": (
            "A camera and a microphone here measure facial expressions and tone of voice "
            "anonymously."
        ),
        "who": "Who is responsible",
        "contact": "Contact: {contact}",
        "what": "What is measured",
        "faces": (
            "Facial expression, by a camera: the closest of {n} categories ({labels}), and "
            "the number of people."
        ),
        "voice": (
            "Tone of voice, when someone speaks, by a microphone: how calm or excited it "
            "sounds, and the closest of {n} categories ({labels})."
        ),
        "zones": "Areas: {zones}.",
        "voice_zones": "Voice is analysed in: {zones}.",
        "masks": (
            "Excluded areas (such as staff areas) are blanked out of the picture before any "
            "analysis."
        ),
        "when": "Hours of operation",
        "always": "At all times.",
        "always_except": "At all times, except on: {dates}.",
        "span": "{days}: {open}–{close}",
        "next_day": " (next day)",
        "timezone": "Local time ({timezone}).",
        "closed": "Not in operation on: {dates}.",
        "off_faces": "Outside these hours the camera is switched off.",
        "off_voice": "Outside these hours the microphone is switched off.",
        "off_both": "Outside these hours the camera and the microphone are switched off.",
        "never": "What is never done",
        "not_recorded": "No image or sound is recorded, stored or sent.",
        "in_memory": (
            "The analysis takes place inside this device, and each image and sound is "
            "discarded from its memory within seconds."
        ),
        "not_identified": "Nobody is identified, and nobody is followed from one visit to the next.",
        "published": "What is published",
        "counts_faces": (
            "Only counts, per area and per period {window}: how many people showed each "
            "expression. A count is published only when it covers at least {k} people; "
            "smaller groups wait until they reach {k} and are never reported on their own."
        ),
        "counts_voice": (
            "Only counts, per area and per period {window}: how many stretches of speech had "
            "each tone of voice."
        ),
        "voice_rule": (
            "A tone of voice is published only once it has been heard in at least {kw} short "
            "stretches of speech{with_camera}."
        ),
        "voice_with_camera": (
            " and, where a camera covers the same area, only for a period in which at least "
            "{k} people were counted"
        ),
        "noise": (
            "Random noise is added to every published count, so that nobody can tell for sure "
            "whether any one person was there (differential privacy, ε = {epsilon} per period)."
        ),
        "questions": "Questions, objections: {contact}",
        "footer": "Device {device}, site {site}.",
        "one_minute": "of 1 minute",
        "minutes": "of {n} minutes",
        "one_hour": "of 1 hour",
        "seconds": "of {n} seconds",
        "day_range": "{first} to {last}",
        "date": "{day} {month} {year}",
    },
    "fr": {
        "title": "Mesure anonyme des émotions",
        "intro_faces": "Une caméra mesure ici, de façon anonyme, les expressions du visage.",
        "intro_voice": "Un microphone mesure ici, de façon anonyme, le ton de la voix.",
        "intro_both": (
            "Une caméra et un microphone mesurent ici, de façon anonyme, les expressions du "
            "visage et le ton de la voix."
        ),
        "who": "Responsable du traitement",
        "contact": "Contact\u00a0: {contact}",
        "what": "Ce qui est mesuré",
        "faces": (
            "L'expression du visage, par une caméra\u00a0: la plus proche de {n} catégories "
            "({labels}), et le nombre de personnes."
        ),
        "voice": (
            "Le ton de la voix, lorsque quelqu'un parle, par un microphone\u00a0: calme ou "
            "animé, et la plus proche de {n} catégories ({labels})."
        ),
        "zones": "Zones\u00a0: {zones}.",
        "voice_zones": "La voix est analysée dans\u00a0: {zones}.",
        "masks": (
            "Les zones exclues (comme les espaces réservés au personnel) sont masquées dans "
            "l'image avant toute analyse."
        ),
        "when": "Horaires de fonctionnement",
        "always": "En permanence.",
        "always_except": "En permanence, sauf les\u00a0: {dates}.",
        "span": "{days}\u00a0: {open} – {close}",
        "next_day": " (le lendemain)",
        "timezone": "Heure locale ({timezone}).",
        "closed": "Hors service les\u00a0: {dates}.",
        "off_faces": "En dehors de ces horaires, la caméra est éteinte.",
        "off_voice": "En dehors de ces horaires, le microphone est éteint.",
        "off_both": "En dehors de ces horaires, la caméra et le microphone sont éteints.",
        "never": "Ce qui n'est jamais fait",
        "not_recorded": "Aucune image ni aucun son n'est enregistré, conservé ou transmis.",
        "in_memory": (
            "L'analyse a lieu dans cet appareil, et chaque image et chaque son est effacé de "
            "sa mémoire en quelques secondes."
        ),
        "not_identified": (
            "Personne n'est identifié, et personne n'est suivi d'une visite à l'autre."
        ),
        "published": "Ce qui est publié",
        "counts_faces": (
            "Uniquement des comptages, par zone et par période {window}\u00a0: combien de "
            "personnes ont montré chaque expression. Un comptage n'est publié que s'il porte "
            "sur au moins {k} personnes\u00a0; les groupes plus petits attendent d'atteindre "
            "ce nombre et ne sont jamais publiés seuls."
        ),
        "counts_voice": (
            "Uniquement des comptages, par zone et par période {window}\u00a0: combien "
            "d'extraits de parole avaient chaque ton de voix."
        ),
        "voice_rule": (
            "Un ton de voix n'est publié qu'une fois entendu dans au moins {kw} courts "
            "extraits de parole{with_camera}."
        ),
        "voice_with_camera": (
            " et, là où une caméra couvre la même zone, seulement pour une période où au "
            "moins {k} personnes ont été comptées"
        ),
        "noise": (
            "Un bruit aléatoire est ajouté à chaque comptage publié, pour que personne ne "
            "puisse savoir avec certitude si une personne donnée était présente "
            "(confidentialité différentielle, ε = {epsilon} par période)."
        ),
        "questions": "Questions, oppositions\u00a0: {contact}",
        "footer": "Appareil {device}, site {site}.",
        "one_minute": "d'une minute",
        "minutes": "de {n} minutes",
        "one_hour": "d'une heure",
        "seconds": "de {n} secondes",
        "day_range": "du {first} au {last}",
        "date": "{day} {month} {year}",
    },
}

EXPRESSION_WORDS: dict[Language, dict[str, str]] = {
    "en": {
        "angry": "anger",
        "disgust": "disgust",
        "fear": "fear",
        "happy": "happiness",
        "sad": "sadness",
        "surprise": "surprise",
        "neutral": "neutral",
    },
    "fr": {
        "angry": "colère",
        "disgust": "dégoût",
        "fear": "peur",
        "happy": "joie",
        "sad": "tristesse",
        "surprise": "surprise",
        "neutral": "neutre",
    },
}

VOICE_WORDS: dict[Language, dict[str, str]] = {
    "en": {**EXPRESSION_WORDS["en"], "bored": "boredom"},
    "fr": {**EXPRESSION_WORDS["fr"], "bored": "ennui"},
}

DAY_WORDS: dict[Language, dict[str, str]] = {
    "en": dict(
        zip(
            WEEK,
            ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"),
            strict=True,
        )
    ),
    "fr": dict(
        zip(
            WEEK,
            ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
            strict=True,
        )
    ),
}

MONTH_WORDS: dict[Language, tuple[str, ...]] = {
    "en": (
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ),
    "fr": (
        "janvier",
        "février",
        "mars",
        "avril",
        "mai",
        "juin",
        "juillet",
        "août",
        "septembre",
        "octobre",
        "novembre",
        "décembre",
    ),
}


class IncompleteNotice(ValueError):
    """The facts lack what a notice must state (who is responsible, whom to ask)."""

    def __init__(self, missing: Sequence[str]) -> None:
        super().__init__(f"a visitor notice needs {', '.join(missing)}")
        self.missing = tuple(missing)


@dataclass(frozen=True, slots=True)
class Section:
    heading: str
    lines: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class NoticeDocument:
    """The notice's content, independent of layout; every string is plain, unescaped text."""

    lang: Language
    title: str
    intro: str
    sections: tuple[Section, ...]
    questions: str
    footer: str


def missing_keys(facts: PrivacyFacts) -> list[str]:
    """The config keys a notice needs that are not set, in REQUIRED_KEYS order."""
    values = {"privacy.controller": facts.controller, "privacy.contact": facts.contact}
    return [key for key in REQUIRED_KEYS if not (values[key] or "").strip()]


# wording helpers ----------------------------------------------------------------------------
def _days(days: Sequence[str], lang: Language) -> str:
    """Days in week order; runs of three or more consecutive days as a range."""
    words, texts = DAY_WORDS[lang], TEXTS[lang]
    parts: list[str] = []
    for run in day_runs(WEEK.index(day) for day in days):
        if len(run) >= 3:
            first, last = words[WEEK[run[0]]], words[WEEK[run[-1]]]
            parts.append(texts["day_range"].format(first=first, last=last))
        else:
            parts.extend(words[WEEK[index]] for index in run)
    text = ", ".join(parts)
    return text[:1].upper() + text[1:]


def _clock(value: str, lang: Language) -> str:
    """09:00 in English; 9 h, 8 h 30 in French."""
    if lang == "en":
        return value
    hours, minutes = value.split(":")
    return f"{int(hours)}{NBSP}h" + ("" if minutes == "00" else f"{NBSP}{minutes}")


def _span(span: HoursSpan, lang: Language) -> str:
    texts = TEXTS[lang]
    line = texts["span"].format(
        days=_days(span.days, lang), open=_clock(span.open, lang), close=_clock(span.close, lang)
    )
    overnight = span.close != "24:00" and span.close < span.open
    return line + (texts["next_day"] if overnight else "")


def _date(iso: str, lang: Language) -> str:
    day = date.fromisoformat(iso)
    number = "1er" if lang == "fr" and day.day == 1 else str(day.day)
    month = MONTH_WORDS[lang][day.month - 1]
    return TEXTS[lang]["date"].format(day=number, month=month, year=day.year)


def _duration(seconds: int, lang: Language) -> str:
    texts = TEXTS[lang]
    if seconds == 60:
        return texts["one_minute"]
    if seconds == 3600:
        return texts["one_hour"]
    if seconds % 60 == 0:
        return texts["minutes"].format(n=seconds // 60)
    return texts["seconds"].format(n=seconds)


def _number(value: float, lang: Language) -> str:
    text = f"{value:g}"
    return text.replace(".", ",") if lang == "fr" else text


# the document -------------------------------------------------------------------------------
def notice_document(facts: PrivacyFacts, lang: Language = "en") -> NoticeDocument:
    """The notice's content in `lang`; raises IncompleteNotice without controller or contact."""
    missing = missing_keys(facts)
    if missing:
        raise IncompleteNotice(missing)
    assert facts.controller is not None and facts.contact is not None
    texts = TEXTS[lang]
    both = facts.faces and facts.voice
    which = "both" if both else ("faces" if facts.faces else "voice")

    what: list[str] = []
    if facts.faces:
        labels = [EXPRESSION_WORDS[lang][label] for label in facts.expression_labels]
        what.append(texts["faces"].format(n=len(labels), labels=", ".join(labels)))
    if facts.voice:
        labels = [VOICE_WORDS[lang][label] for label in facts.voice_emotion_labels]
        what.append(texts["voice"].format(n=len(labels), labels=", ".join(labels)))
    what.append(texts["zones"].format(zones=", ".join(facts.zones)))
    if both:
        what.append(texts["voice_zones"].format(zones=", ".join(facts.voice_zones)))
    if facts.has_masks:
        what.append(texts["masks"])

    schedule = facts.schedule
    dates = ", ".join(_date(day, lang) for day in schedule.closed_dates)
    when: list[str] = []
    if schedule.always_on:
        when.append(texts["always"])
    elif not schedule.hours:  # open all day, every day but the closed dates
        when.append(texts["always_except"].format(dates=dates))
    else:
        when.extend(_span(span, lang) for span in schedule.hours)
        when.append(texts["timezone"].format(timezone=schedule.timezone))
        if dates:
            when.append(texts["closed"].format(dates=dates))
        when.append(texts[f"off_{which}"])

    never = [texts["not_recorded"], texts["in_memory"], texts["not_identified"]]

    window = _duration(facts.window_s, lang)
    published: list[str] = []
    if facts.faces:
        published.append(texts["counts_faces"].format(window=window, k=facts.k_threshold))
    else:
        published.append(texts["counts_voice"].format(window=window))
    if facts.voice:
        with_camera = (
            texts["voice_with_camera"].format(k=facts.k_threshold)
            if facts.voice_with_camera
            else ""
        )
        published.append(texts["voice_rule"].format(kw=facts.k_windows, with_camera=with_camera))
    if facts.dp_epsilon is not None:
        published.append(texts["noise"].format(epsilon=_number(facts.dp_epsilon, lang)))

    return NoticeDocument(
        lang=lang,
        title=texts["title"],
        intro=texts[f"intro_{which}"],
        sections=(
            Section(
                texts["who"], (facts.controller, texts["contact"].format(contact=facts.contact))
            ),
            Section(texts["what"], tuple(what)),
            Section(texts["when"], tuple(when)),
            Section(texts["never"], tuple(never)),
            Section(texts["published"], tuple(published)),
        ),
        questions=texts["questions"].format(contact=facts.contact),
        footer=texts["footer"].format(device=facts.device, site=facts.site),
    )


# the writers --------------------------------------------------------------------------------
def _fill(text: str, first: str = "", rest: str = "") -> str:
    """Wrap without splitting words or hyphenated names: a broken e-mail address or URL on a
    sign is a wrong contact."""
    return textwrap.fill(
        text,
        WIDTH,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=False,
        break_on_hyphens=False,
    )


def as_text(document: NoticeDocument) -> str:
    """Plain text wrapped at WIDTH columns, for a terminal, an e-mail or a simple printer."""
    out = [document.title.upper(), "=" * len(document.title), "", _fill(document.intro)]
    for section in document.sections:
        out += ["", section.heading, "-" * len(section.heading)]
        out += [_fill(line, "- ", "  ") for line in section.lines]
    out += ["", _fill(document.questions), "", _fill(document.footer)]
    return "\n".join(out) + "\n"


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]<>#|~&])")


def _md(text: str) -> str:
    """Backslash-escape what Markdown would read as markup or raw HTML."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text)


def as_markdown(document: NoticeDocument) -> str:
    """Markdown, for a web page, a wiki or a README next to the device."""
    out = [f"# {_md(document.title)}", "", _md(document.intro)]
    for section in document.sections:
        out += ["", f"## {_md(section.heading)}", ""]
        out += [f"- {_md(line)}" for line in section.lines]
    out += ["", f"**{_md(document.questions)}**", "", f"*{_md(document.footer)}*"]
    return "\n".join(out) + "\n"


_CSS = """\
@page { size: A4; margin: 14mm; }
html { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; color: #111;
       background: #fff; }
body { margin: 0 auto; max-width: 182mm; font-size: 15pt; line-height: 1.35; }
h1 { font-size: 40pt; line-height: 1.1; margin: 0 0 5mm; }
.intro { font-size: 20pt; font-weight: bold; margin: 0 0 4mm; }
h2 { font-size: 18pt; margin: 6mm 0 2mm; padding-bottom: 1mm; border-bottom: 2pt solid #111; }
ul { margin: 0; padding-left: 7mm; }
li { margin: 0 0 1.5mm; }
.questions { font-size: 20pt; font-weight: bold; margin: 8mm 0 0; padding: 4mm;
             border: 3pt solid #111; overflow-wrap: anywhere; }
footer { font-size: 10pt; color: #444; margin-top: 5mm; }
@media screen { body { padding: 10mm; } }"""


def as_html(document: NoticeDocument) -> str:
    """A standalone page to print on A4 and put up at the entrance: one file, CSS inside, no
    external fonts or images, so it prints the same anywhere. Every text is HTML-escaped."""
    esc = html.escape
    body = [f"<h1>{esc(document.title)}</h1>", f'<p class="intro">{esc(document.intro)}</p>']
    for section in document.sections:
        items = "\n".join(f"    <li>{esc(line)}</li>" for line in section.lines)
        body.append(
            f"<section>\n  <h2>{esc(section.heading)}</h2>\n  <ul>\n{items}\n  </ul>\n</section>"
        )
    body.append(f'<p class="questions">{esc(document.questions)}</p>')
    body.append(f"<footer>{esc(document.footer)}</footer>")
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{esc(document.lang)}">\n'
        "<head>\n"
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(document.title)}</title>\n"
        f"<style>\n{_CSS}\n</style>\n"
        "</head>\n"
        "<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


_WRITERS = {"text": as_text, "markdown": as_markdown, "html": as_html}


def render_notice(facts: PrivacyFacts, lang: Language = "en", fmt: Format = "text") -> str:
    """The visitor notice for `facts` in `lang` and `fmt`; raises IncompleteNotice when the
    controller or the contact is not configured."""
    if lang not in TEXTS:
        raise ValueError(f"unknown language {lang!r}; one of {', '.join(LANGUAGES)}")
    if fmt not in _WRITERS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    return _WRITERS[fmt](notice_document(facts, lang))
