"""Slot extraction: dates and times, recurrence, amounts, contacts, titles. Pure: no I/O.

Every function takes what it needs (text, language, the user's zone, "now") and returns
plain values, so each rule is unit-tested against a fixed clock.

Time rules (documented in INTEGRATION.md, and what the tests pin):
- Relative offsets ("in 20 minutes", "in an hour", "dans 10 minutes") add to *now*.
- A bare hour without am/pm ("at five") is 1-6 → afternoon (17:00), 7-11 → morning,
  12 → noon; a day part ("tonight", "in the evening", "de la tarde") moves it to pm, and
  on today a morning hour already past becomes the evening one when that is still ahead.
- A day without a time ("next Friday") is at 09:00 local; a day part alone uses 09:00,
  15:00, 18:00 or 20:00 (morning, afternoon, evening, tonight).
- A time without a day is today, or tomorrow once it has passed.
- "next <weekday>" and "on <weekday>" are the next such day strictly after today.
- Absolute dates ("June 3rd", "el 5 de marzo", "am 3. Juni") go through dateparser in the
  user's language, preferring the future; a day of the month alone ("on the 15th") is this
  month's, or next month's once it has passed.
- Recurrence ("every other Monday at 9", "every day at 8", "every weekday", "each month on
  the 1st", "cada lunes", "jeden Montag", "tous les jours") becomes an RFC 5545 RRULE whose
  first occurrence is the local due time.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from zoneinfo import ZoneInfo

WEEKDAY_CODES = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")

# --- numbers spoken as words ------------------------------------------------------------

_TEXT2NUM_LANGS = {"en", "es", "fr", "de"}


def normalize_numbers(text: str, lang: str) -> str:
    """'twenty dollars' → '20 dollars', 'a las cinco' → 'a las 5' (text2num, en/es/fr/de)."""
    if lang in _TEXT2NUM_LANGS:
        try:
            from text_to_num import alpha2digit

            # Isolated one/two/three stay words ("call one person"); the cue rule below
            # converts them where they are a time or a count ("at two", "in three hours").
            text = alpha2digit(text, lang)
        except Exception:  # noqa: BLE001, S110 (text2num refuses some inputs; the words stay words then)
            pass
        small = _SMALL.get(lang, {})
        if small:
            words = "|".join(sorted(small, key=len, reverse=True))
            cue, unit = _CUES.get(lang, ("", ""))
            text = re.sub(
                rf"(?<!\w)(?P<cue>(?:{cue}) )(?P<n>{words})(?!\w)",
                lambda m: m.group("cue") + small[m.group("n").lower()], text, flags=re.IGNORECASE,
            )
            text = re.sub(
                rf"(?<!\w)(?P<n>{words})(?P<unit> (?:{unit}))(?!\w)",
                lambda m: small[m.group("n").lower()] + m.group("unit"), text, flags=re.IGNORECASE,
            )
    if lang in _NUMBER_WORDS:
        table = _NUMBER_WORDS[lang]
        words = "|".join(sorted(table, key=len, reverse=True))
        # Only as a count or an hour: "दो" and "دو" are also "give" ("याद दिला दो").
        units = _NUMBER_UNITS[lang]
        text = re.sub(rf"(?<!\w)({words}) (?=(?:{units})(?!\w))", lambda m: table[m.group(1)] + " ", text)
    # Hindi/Urdu digits and Arabic-Indic digits → ASCII.
    out = []
    for ch in text:
        if ch.isdigit() and not ch.isascii():
            try:
                out.append(str(unicodedata.digit(ch)))
                continue
            except (TypeError, ValueError):
                pass
        out.append(ch)
    text = "".join(out)
    if lang == "en":
        text = re.sub(r"\bthe (first|second|third)\b", lambda m: "the " + {"first": "1st", "second": "2nd", "third": "3rd"}[m.group(1).lower()], text, flags=re.IGNORECASE)
        # "five thirty" after text2num is "5 30": a clock time when it follows "at".
        text = re.sub(r"\bat (\d{1,2}) ([0-5]\d)\b", r"at \1:\2", text)
    return text


_NUMBER_WORDS = {
    "hi": {"एक": "1", "दो": "2", "तीन": "3", "चार": "4", "पांच": "5", "पाँच": "5", "छह": "6", "छः": "6", "सात": "7",
           "आठ": "8", "नौ": "9", "दस": "10", "ग्यारह": "11", "बारह": "12", "बीस": "20", "तीस": "30", "पचास": "50", "सौ": "100"},
    "ur": {"ایک": "1", "دو": "2", "تین": "3", "چار": "4", "پانچ": "5", "چھ": "6", "سات": "7", "آٹھ": "8", "نو": "9",
           "دس": "10", "گیارہ": "11", "بارہ": "12", "بیس": "20", "تیس": "30", "پچاس": "50", "سو": "100"},
}
_NUMBER_UNITS = {
    "hi": "बजे|मिनट|घंटे|घंटा|दिन|हफ्ते|रुपये|रुपए|रुपया|डॉलर|यूरो",
    "ur": "بجے|منٹ|گھنٹے|گھنٹہ|دن|ہفتے|روپے|روپیہ|ڈالر|یورو",
}
_SMALL = {
    "en": {"one": "1", "two": "2", "three": "3"},
    "es": {"una": "1", "uno": "1", "dos": "2", "tres": "3"},
    "de": {"eins": "1", "zwei": "2", "drei": "3"},
    "fr": {"une": "1", "un": "1", "deux": "2", "trois": "3"},
}
_CUES = {
    "en": ("at|by|around|past|quarter to|every|each|for|in|until", "minutes?|mins?|hours?|hrs?|days?|weeks?|months?|dollars?|euros?|pounds?|rupees?|bucks|pm|am|p\\.m\\.|a\\.m\\.|o'clock"),
    "es": ("a las|a la|cada|en|dentro de", "minutos?|horas?|días?|semanas?|dólares|euros?"),
    "de": ("um|in|alle", "minuten?|stunden?|tagen?|wochen?|uhr|euro|dollar"),
    "fr": ("à|dans|tous les", "minutes?|heures?|jours?|semaines?|euros?|dollars?"),
}


def primary_language(tag: str | None) -> str:
    return (tag or "en").split("-")[0].split("_")[0].lower() or "en"


# --- per-language vocabulary -------------------------------------------------------------


@dataclass(frozen=True)
class Lexicon:
    weekdays: dict[str, int]
    today: str
    tomorrow: str
    after_tomorrow: str
    tonight: str
    morning: str
    afternoon: str
    evening: str
    noon: str
    midnight: str
    units: dict[str, str]  # regex alternative → unit (minutes/hours/days/weeks)
    relative: str  # regex with (?P<n>) and (?P<unit>) groups
    clock: list[str]  # regexes with (?P<h>), optional (?P<m>), (?P<ampm>)
    next_word: str  # "next|this|on" before a weekday
    every: str  # regex starting a recurrence
    other: str  # "other" in "every other"
    day_unit: str
    weekday_unit: str
    week_unit: str
    month_unit: str
    year_unit: str
    a_one: str  # "an|a|one"
    half: str
    months: bool = True


_UNITS_EN = {r"minutes?|mins?": "minutes", r"hours?|hrs?": "hours", r"days?": "days", r"weeks?": "weeks"}

LEXICONS: dict[str, Lexicon] = {
    "en": Lexicon(
        weekdays={"monday": 0, "tuesday": 1, "wednesday": 2, "thursday": 3, "friday": 4, "saturday": 5, "sunday": 6},
        today=r"today|this morning|this afternoon",
        tomorrow=r"tomorrow|tmrw",
        after_tomorrow=r"(?:the )?day after tomorrow",
        tonight=r"tonight|this evening|tonite",
        morning=r"(?:in the )?morning",
        afternoon=r"(?:in the )?afternoon",
        evening=r"(?:in the )?evening|at night",
        noon=r"noon|midday",
        midnight=r"midnight",
        units=_UNITS_EN,
        relative=r"\b(?:in|within|after) (?P<n>\d+|an?|one|half an?|a couple of) (?P<unit>minutes?|mins?|hours?|hrs?|days?|weeks?)(?: from now)?\b",
        clock=[
            r"\b(?:at |by |around |for )?(?P<h>\d{1,2})(?:[:.](?P<m>\d{2}))? ?(?P<ampm>a\.?m\.?|p\.?m\.?|o'?clock)(?![a-z])",
            r"\b(?:at|by|around|for) (?P<h>\d{1,2})(?::(?P<m>\d{2}))?\b",
            r"\b(?P<h>\d{1,2}):(?P<m>\d{2})\b",
            r"\b(?:at )?half past (?P<h>\d{1,2})\b(?P<half>)",
            r"\b(?:at )?(?:a )?quarter past (?P<h>\d{1,2})\b(?P<qpast>)",
            r"\b(?:at )?(?:a )?quarter to (?P<h>\d{1,2})\b(?P<qto>)",
        ],
        next_word=r"(?:on |next |this |coming |on next )",
        every=r"\b(?:every|each)\b",
        other=r"other",
        day_unit=r"days?|morning|evening|night",
        weekday_unit=r"weekdays?|work ?days?",
        week_unit=r"weeks?",
        month_unit=r"months?",
        year_unit=r"years?",
        a_one=r"an?|one",
        half=r"half an?",
    ),
    "es": Lexicon(
        weekdays={"lunes": 0, "martes": 1, "miércoles": 2, "miercoles": 2, "jueves": 3, "viernes": 4, "sábado": 5, "sabado": 5, "domingo": 6},
        today=r"hoy",
        tomorrow=r"mañana(?! por la mañana)|manana",
        after_tomorrow=r"pasado mañana|pasado manana",
        tonight=r"esta noche",
        morning=r"(?:de|por) la mañana",
        afternoon=r"(?:de|por) la tarde",
        evening=r"(?:de|por) la noche",
        noon=r"mediodía|mediodia",
        midnight=r"medianoche",
        units={r"minutos?": "minutes", r"horas?": "hours", r"días?|dias?": "days", r"semanas?": "weeks"},
        relative=r"\b(?:en|dentro de) (?P<n>\d+|una?|media) (?P<unit>minutos?|horas?|días?|dias?|semanas?)\b",
        clock=[
            r"\ba la (?P<h>1)(?::(?P<m>\d{2}))?\b",
            r"\ba las (?P<h>\d{1,2})(?::(?P<m>\d{2}))?(?: y media(?P<half>))?\b",
            r"\b(?P<h>\d{1,2}):(?P<m>\d{2})\b",
        ],
        next_word=r"(?:el |el próximo |el proximo |este |próximo |proximo )",
        every=r"\b(?:cada|todos los|todas las)\b",
        other=r"(?:dos)",
        day_unit=r"días?|dias?|mañanas|noches",
        weekday_unit=r"días laborables|dias laborables",
        week_unit=r"semanas?",
        month_unit=r"mes(?:es)?",
        year_unit=r"años?",
        a_one=r"una?",
        half=r"media",
    ),
    "de": Lexicon(
        weekdays={"montag": 0, "dienstag": 1, "mittwoch": 2, "donnerstag": 3, "freitag": 4, "samstag": 5, "sonnabend": 5, "sonntag": 6},
        today=r"heute",
        tomorrow=r"morgen(?!s)",
        after_tomorrow=r"übermorgen|uebermorgen",
        tonight=r"heute abend|heute nacht",
        morning=r"am morgen|morgens|früh|vormittags?",
        afternoon=r"(?:am )?nachmittags?",
        evening=r"(?:am )?abends?|nachts",
        noon=r"mittag",
        midnight=r"mitternacht",
        units={r"minuten?": "minutes", r"stunden?": "hours", r"tagen?": "days", r"wochen?": "weeks"},
        relative=r"\b(?:in|nach) (?P<n>\d+|einer?|einem|eine halbe) (?P<unit>minuten?|stunden?|tagen?|wochen?)\b",
        clock=[
            r"\bum (?P<h>\d{1,2})(?::(?P<m>\d{2}))?(?: uhr)?(?: (?P<m2>\d{2}))?\b",
            r"\b(?P<h>\d{1,2})(?::(?P<m>\d{2}))? uhr\b",
            r"\b(?P<h>\d{1,2}):(?P<m>\d{2})\b",
        ],
        next_word=r"(?:am |nächsten |naechsten |nächster |diesen |kommenden )",
        every=r"\b(?:jeden|jede|jedes|alle)\b",
        other=r"(?:zweiten|zwei)",
        day_unit=r"tag|morgen|abend",
        weekday_unit=r"werktag|arbeitstag",
        week_unit=r"woche",
        month_unit=r"monat",
        year_unit=r"jahr",
        a_one=r"einer?|einem",
        half=r"eine halbe",
    ),
    "fr": Lexicon(
        weekdays={"lundi": 0, "mardi": 1, "mercredi": 2, "jeudi": 3, "vendredi": 4, "samedi": 5, "dimanche": 6},
        today=r"aujourd'hui|aujourd hui",
        tomorrow=r"demain",
        after_tomorrow=r"après-demain|apres-demain|après demain",
        tonight=r"ce soir",
        morning=r"du matin|le matin",
        afternoon=r"de l'après-midi|de l'apres-midi|l'après-midi",
        evening=r"du soir|le soir",
        noon=r"midi",
        midnight=r"minuit",
        units={r"minutes?": "minutes", r"heures?": "hours", r"jours?": "days", r"semaines?": "weeks"},
        relative=r"\b(?:dans|d'ici) (?P<n>\d+|une?|une demi) (?P<unit>minutes?|heures?|jours?|semaines?)\b",
        clock=[
            r"\bà (?P<h>\d{1,2}) ?(?:heures?|h)(?: ?(?P<m>\d{2}))?(?: et demie(?P<half>))?",
            r"\b(?P<h>\d{1,2}) ?h ?(?P<m>\d{2})\b",
            r"\b(?P<h>\d{1,2}):(?P<m>\d{2})\b",
        ],
        next_word=r"(?:le |ce |lundi prochain )",
        every=r"\b(?:chaque|tous les|toutes les)\b",
        other=r"(?:deux)",
        day_unit=r"jours?|matins?|soirs?",
        weekday_unit=r"jours ouvrables|jours de semaine",
        week_unit=r"semaines?",
        month_unit=r"mois",
        year_unit=r"ans?|années?",
        a_one=r"une?",
        half=r"une demi",
    ),
    "hi": Lexicon(
        weekdays={"सोमवार": 0, "मंगलवार": 1, "बुधवार": 2, "गुरुवार": 3, "शुक्रवार": 4, "शनिवार": 5, "रविवार": 6},
        today=r"आज",
        tomorrow=r"कल",
        after_tomorrow=r"परसों",
        tonight=r"आज रात",
        morning=r"सुबह",
        afternoon=r"दोपहर",
        evening=r"शाम|रात",
        noon=r"दोपहर 12 बजे",
        midnight=r"आधी रात",
        units={r"मिनट": "minutes", r"घंटे|घंटा": "hours", r"दिन": "days", r"हफ्ते|सप्ताह": "weeks"},
        relative=r"(?P<n>\d+|एक) (?P<unit>मिनट|घंटे|घंटा|दिन|हफ्ते|सप्ताह) (?:में|बाद)",
        clock=[r"(?P<h>\d{1,2})(?::(?P<m>\d{2}))? बजे"],
        next_word=r"(?:अगले |इस )",
        every=r"(?:हर|प्रत्येक)",
        other=r"दूसरे",
        day_unit=r"दिन|रोज़|रोज",
        weekday_unit=r"कार्यदिवस",
        week_unit=r"हफ्ते|सप्ताह",
        month_unit=r"महीने",
        year_unit=r"साल",
        a_one=r"एक",
        half=r"आधे",
        months=False,
    ),
    "ur": Lexicon(
        weekdays={"پیر": 0, "منگل": 1, "بدھ": 2, "جمعرات": 3, "جمعہ": 4, "ہفتہ": 5, "اتوار": 6},
        today=r"آج",
        tomorrow=r"کل",
        after_tomorrow=r"پرسوں",
        tonight=r"آج رات",
        morning=r"صبح",
        afternoon=r"دوپہر",
        evening=r"شام|رات",
        noon=r"دوپہر 12 بجے",
        midnight=r"آدھی رات",
        units={r"منٹ": "minutes", r"گھنٹے|گھنٹہ": "hours", r"دن": "days", r"ہفتے": "weeks"},
        relative=r"(?P<n>\d+|ایک) (?P<unit>منٹ|گھنٹے|گھنٹہ|دن|ہفتے) (?:میں|بعد)",
        clock=[r"(?P<h>\d{1,2})(?::(?P<m>\d{2}))? بجے"],
        next_word=r"(?:اگلے |اس )",
        every=r"(?:ہر)",
        other=r"دوسرے",
        day_unit=r"دن|روز",
        weekday_unit=r"کام کے دن",
        week_unit=r"ہفتے",
        month_unit=r"مہینے",
        year_unit=r"سال",
        a_one=r"ایک",
        half=r"آدھے",
        months=False,
    ),
}


def lexicon(lang: str) -> Lexicon:
    return LEXICONS.get(lang, LEXICONS["en"])


# --- when -----------------------------------------------------------------------------


@dataclass
class When:
    """A resolved time: ``local_due`` is wall-clock in ``timezone``; ``rrule`` when recurring."""

    local_due: datetime
    timezone: str
    rrule: str | None = None
    explicit_time: bool = False
    explicit_day: bool = False
    spans: list[tuple[int, int]] = field(default_factory=list)

    @property
    def due_at(self) -> datetime:
        return self.local_due.replace(tzinfo=ZoneInfo(self.timezone))


@dataclass
class DayRange:
    """A local day (or days) a listing/cancel refers to, as aware instants."""

    start: datetime
    end: datetime
    label: str
    spans: list[tuple[int, int]] = field(default_factory=list)


def _match_all(pattern: str, text: str) -> list[re.Match]:
    return list(re.finditer(pattern, text, flags=re.IGNORECASE))


def _first(pattern: str, text: str) -> re.Match | None:
    return re.search(pattern, text, flags=re.IGNORECASE)


def _count(word: str, lex: Lexicon) -> float:
    if word.isdigit():
        return float(word)
    w = word.lower()
    if re.fullmatch(lex.half, w, flags=re.IGNORECASE):
        return 0.5
    if w == "a couple of":
        return 2.0
    return 1.0


def _unit(word: str, lex: Lexicon) -> str:
    for pattern, unit in lex.units.items():
        if re.fullmatch(pattern, word, flags=re.IGNORECASE):
            return unit
    return "minutes"


def _weekday_pattern(lex: Lexicon) -> str:
    names = sorted(lex.weekdays, key=len, reverse=True)
    # English plurals ("every mondays") and French ones ("tous les lundis").
    return r"(?P<wd>" + "|".join(re.escape(n) for n in names) + r")s?"


_DAY_OF_MONTH = r"\b(?:on )?the (?P<dom>\d{1,2})(?:st|nd|rd|th)\b(?: of (?:the|this) month)?"
_MONTHS_EN = r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
_MONTHS_ES = r"(?:enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|diciembre)"
_MONTHS_DE = r"(?:januar|februar|märz|maerz|april|mai|juni|juli|august|september|oktober|november|dezember)"
_MONTHS_FR = r"(?:janvier|février|fevrier|mars|avril|mai|juin|juillet|août|aout|septembre|octobre|novembre|décembre|decembre)"
_ABS_DATES = {
    "en": [
        rf"\b(?:on )?{_MONTHS_EN}\.? \d{{1,2}}(?:st|nd|rd|th)?(?:,? \d{{4}})?\b",
        rf"\b(?:on )?(?:the )?\d{{1,2}}(?:st|nd|rd|th)? (?:of )?{_MONTHS_EN}\b(?:,? \d{{4}})?",
    ],
    "es": [rf"\b(?:el )?\d{{1,2}} de {_MONTHS_ES}(?: de \d{{4}})?\b"],
    "de": [rf"\b(?:am )?\d{{1,2}}\.? {_MONTHS_DE}(?: \d{{4}})?\b"],
    "fr": [rf"\b(?:le )?\d{{1,2}}(?:er)? {_MONTHS_FR}(?: \d{{4}})?\b"],
}


def _parse_abs_date(fragment: str, lang: str, today: date) -> date | None:
    import dateparser

    settings = {
        "PREFER_DATES_FROM": "future",
        "RELATIVE_BASE": datetime.combine(today, time(12, 0)),
        "PREFER_DAY_OF_MONTH": "first",
        "REQUIRE_PARTS": ["day", "month"],
    }
    cleaned = re.sub(r"^(?:on|the|el|am|le)\s+", "", fragment.strip(), flags=re.IGNORECASE)
    cleaned = re.sub(r"^(?:the)\s+", "", cleaned, flags=re.IGNORECASE)
    parsed = dateparser.parse(cleaned, languages=[lang], settings=settings)
    if parsed is None:
        return None
    d = parsed.date()
    if d < today and not re.search(r"\d{4}", fragment):
        d = d.replace(year=d.year + 1)
    return d


def _next_weekday(today: date, weekday: int, *, include_today: bool) -> date:
    delta = (weekday - today.weekday()) % 7
    if delta == 0 and not include_today:
        delta = 7
    return today + timedelta(days=delta)


def _dom_date(today: date, dom: int) -> date | None:
    year, month = today.year, today.month
    for _ in range(13):
        try:
            d = date(year, month, dom)
        except ValueError:
            d = None
        if d is not None and d >= today:
            return d
        month += 1
        if month > 12:
            year, month = year + 1, 1
    return None


def _hour_with_meridiem(h: int, m: int, ampm: str | None, daypart: str | None) -> tuple[int, int, bool]:
    """(hour, minute, ambiguous): apply am/pm words, or mark a bare 1-12 hour ambiguous."""
    if ampm:
        a = ampm.lower().replace(".", "")
        if a.startswith("p") and h < 12:
            h += 12
        elif a.startswith("a") and h == 12:
            h = 0
        if a.startswith(("a", "p")):
            return h, m, False
    if h >= 13 or h == 0:
        return h, m, False
    if daypart in ("afternoon", "evening", "tonight") and h < 12:
        return h + 12, m, False
    if daypart == "morning":
        return (0 if h == 12 else h), m, False
    return h, m, True


def _bare_hour(h: int, m: int) -> tuple[int, int]:
    if 1 <= h <= 6:
        return h + 12, m
    return h, m


def _taken(spans: list[tuple[int, int]], start: int, end: int) -> bool:
    return any(start < e and s < end for s, e in spans)


def parse_when(text: str, *, lang: str, timezone: str, now: datetime) -> When | None:
    """Find the time expression in ``text``; None when it names no time at all."""
    lex = lexicon(lang)
    zone = ZoneInfo(timezone)
    now_local = now.astimezone(zone)
    today = now_local.date()
    t = text.lower()
    spans: list[tuple[int, int]] = []

    def take(match: re.Match) -> None:
        spans.append(match.span())

    # Recurrence first (it contains weekday/time words the later rules would take).
    rrule_parts: dict[str, str] = {}
    first_day: date | None = None
    every = _first(lex.every, t)
    if every:
        rest_start = every.end()
        wd_pat = _weekday_pattern(lex)
        m = re.compile(
            rf"\s*(?:(?P<other>{lex.other}) )?(?:(?P<n>\d+) )?"
            rf"(?:(?P<unit_weekday>{lex.weekday_unit})\b|{wd_pat}(?:(?:,| and| y| und| et) {wd_pat.replace('wd', 'wd2')})?\b|"
            rf"(?P<unit_day>{lex.day_unit})\b|(?P<unit_week>{lex.week_unit})\b|(?P<unit_month>{lex.month_unit})\b|"
            rf"(?P<unit_year>{lex.year_unit})\b|(?P<unit_hour>hours?|horas?|stunden?|heures?)\b|(?P<unit_min>minutes?|minutos?|minuten?)\b)",
            flags=re.IGNORECASE,
        ).match(t, rest_start)
        if m:
            interval = 2 if m.group("other") else int(m.group("n") or 1)
            if m.group("unit_weekday"):
                rrule_parts = {"FREQ": "WEEKLY", "BYDAY": "MO,TU,WE,TH,FR"}
            elif m.group("wd"):
                days = [lex.weekdays[m.group("wd")]]
                if m.group("wd2"):
                    days.append(lex.weekdays[m.group("wd2")])
                rrule_parts = {"FREQ": "WEEKLY", "BYDAY": ",".join(WEEKDAY_CODES[d] for d in sorted(set(days)))}
                first_day = min(_next_weekday(today, d, include_today=True) for d in days)
            elif m.group("unit_day"):
                rrule_parts = {"FREQ": "DAILY"}
                word = m.group("unit_day")
                if re.fullmatch(r"morning|mañanas|morgen|matins?|صبح|सुबह", word):
                    rrule_parts["_daypart"] = "morning"
                elif re.fullmatch(r"evening|night|noches|abend|soirs?|شام|रात|شام", word):
                    rrule_parts["_daypart"] = "evening"
            elif m.group("unit_week"):
                rrule_parts = {"FREQ": "WEEKLY"}
            elif m.group("unit_month"):
                rrule_parts = {"FREQ": "MONTHLY"}
            elif m.group("unit_year"):
                rrule_parts = {"FREQ": "YEARLY"}
            elif m.group("unit_hour"):
                rrule_parts = {"FREQ": "HOURLY"}
            elif m.group("unit_min"):
                rrule_parts = {"FREQ": "MINUTELY"}
            if interval > 1:
                rrule_parts["INTERVAL"] = str(interval)
            spans.append((every.start(), m.end()))
    else:
        for word, freq in (("daily", "DAILY"), ("weekly", "WEEKLY"), ("monthly", "MONTHLY"), ("täglich", "DAILY"), ("diario", "DAILY"), ("روزانہ", "DAILY"), ("रोज़", "DAILY"), ("रोज", "DAILY")):
            mm = _first(rf"(?<!\w){word}(?!\w)", t)
            if mm:
                rrule_parts = {"FREQ": freq}
                take(mm)
                break
        if not rrule_parts and lang == "en":
            mm = _first(r"\bon (?:the )?(?P<dom>\d{1,2})(?:st|nd|rd|th)? (?:of )?(?:every|each) month\b", t)
            if mm:
                rrule_parts = {"FREQ": "MONTHLY", "BYMONTHDAY": mm.group("dom")}
                first_day = _dom_date(today, int(mm.group("dom")))
                take(mm)

    # Relative offset: "in 20 minutes" (and Whisper's "and 20 minutes ..." for a leading "in").
    offset: timedelta | None = None
    relative = lex.relative
    if lang == "en":
        relative = r"(?:^an?d? (?P<n0>\d+) (?P<unit0>minutes?|hours?)\b)|" + relative
    for mm in _match_all(relative, t):
        if mm.groupdict().get("n0"):
            offset = timedelta(**{_unit(mm.group("unit0"), lex): float(mm.group("n0"))})
            take(mm)
            break
        if _taken(spans, *mm.span()):
            continue
        n = _count(mm.group("n"), lex)
        unit = _unit(mm.group("unit"), lex)
        offset = timedelta(**{unit: n})
        take(mm)
        break

    # Day part words.
    daypart: str | None = rrule_parts.pop("_daypart", None) if rrule_parts else None
    day: date | None = first_day
    explicit_day = first_day is not None
    for name in ("tonight",):
        mm = _first(rf"(?<!\w)(?:{lex.tonight})(?!\w)", t)
        if mm and not _taken(spans, *mm.span()):
            daypart, day, explicit_day = "tonight", today, True
            take(mm)
    for name, pattern in (("morning", lex.morning), ("afternoon", lex.afternoon), ("evening", lex.evening)):
        mm = _first(rf"(?<!\w)(?:{pattern})(?!\w)", t)
        if mm and not _taken(spans, *mm.span()):
            daypart = daypart or name
            take(mm)

    # Days.
    if day is None:
        for pattern, delta in ((lex.after_tomorrow, 2), (lex.tomorrow, 1), (lex.today, 0)):
            mm = _first(rf"(?<!\w)(?:{pattern})(?!\w)", t)
            if mm and not _taken(spans, *mm.span()):
                day, explicit_day = today + timedelta(days=delta), True
                take(mm)
                break
    if day is None and not rrule_parts:
        wd = _first(rf"(?<!\w)(?P<pre>{lex.next_word})?{_weekday_pattern(lex)}(?!\w)", t)
        if wd and not _taken(spans, *wd.span()):
            day, explicit_day = _next_weekday(today, lex.weekdays[wd.group("wd")], include_today=False), True
            take(wd)
    if day is None:
        for pattern in _ABS_DATES.get(lang, []):
            mm = _first(pattern, t)
            if mm and not _taken(spans, *mm.span()):
                parsed = _parse_abs_date(mm.group(0), lang, today)
                if parsed:
                    day, explicit_day = parsed, True
                    take(mm)
                    break
    if day is None and lang == "en" and rrule_parts.get("FREQ") != "MONTHLY":
        mm = _first(_DAY_OF_MONTH, t)
        if mm and not _taken(spans, *mm.span()):
            d = _dom_date(today, int(mm.group("dom")))
            if d:
                day, explicit_day = d, True
                take(mm)
    if rrule_parts.get("FREQ") == "MONTHLY" and "BYMONTHDAY" not in rrule_parts:
        mm = _first(_DAY_OF_MONTH, t)
        if mm and not _taken(spans, *mm.span()):
            rrule_parts["BYMONTHDAY"] = mm.group("dom")
            first_day = day = _dom_date(today, int(mm.group("dom")))
            take(mm)

    # Clock time.
    clock: tuple[int, int] | None = None
    ambiguous = False
    mm = _first(rf"(?<!\w)(?:at )?(?:{lex.noon})(?!\w)", t)
    if mm and not _taken(spans, *mm.span()):
        clock = (12, 0)
        take(mm)
    mm = _first(rf"(?<!\w)(?:at )?(?:{lex.midnight})(?!\w)", t)
    if clock is None and mm and not _taken(spans, *mm.span()):
        clock = (0, 0)
        take(mm)
    if clock is None:
        for pattern in lex.clock:
            for cm in _match_all(pattern, t):
                if _taken(spans, *cm.span()):
                    continue
                h = int(cm.group("h"))
                groups = cm.groupdict()
                minute = int(groups.get("m") or groups.get("m2") or 0)
                if groups.get("half") is not None:
                    minute = 30
                if groups.get("qpast") is not None:
                    minute = 15
                if groups.get("qto") is not None:
                    h, minute = (h - 1) % 24, 45
                ampm = groups.get("ampm")
                if ampm and ampm.lower().startswith("o"):
                    ampm = None
                if h > 23 or minute > 59:
                    continue
                # A bare "at 20" after a relative expression or before a unit is no time.
                h, minute, ambiguous = _hour_with_meridiem(h, minute, ampm, daypart)
                clock = (h, minute)
                take(cm)
                break
            if clock is not None:
                break

    if not rrule_parts and offset is None and day is None and clock is None and daypart is None:
        return None

    if offset is not None and clock is None and day is None:
        local = (now_local + offset).replace(second=0, microsecond=0, tzinfo=None)
        # Round up to the minute so "in 20 minutes" is never early.
        if (now_local + offset).second or (now_local + offset).microsecond:
            local += timedelta(minutes=1)
        return When(local, timezone, _rrule(rrule_parts), explicit_time=True, explicit_day=False, spans=sorted(spans))

    base_day = day or (today + offset if offset is not None else today)
    if isinstance(base_day, datetime):
        base_day = base_day.date()
    if clock is None:
        default = {"morning": (9, 0), "afternoon": (15, 0), "evening": (18, 0), "tonight": (20, 0)}.get(daypart or "", (9, 0))
        if rrule_parts.get("FREQ") in ("HOURLY", "MINUTELY"):
            default = (now_local.hour, now_local.minute)
        h, minute, explicit_time = default[0], default[1], daypart is not None
    else:
        h, minute = clock
        explicit_time = True
        if ambiguous:
            h, minute = _bare_hour(h, minute)
            # Today and the morning hour passed: the evening one, when still ahead.
            if day is None or day == today:
                candidate = datetime.combine(base_day, time(h, minute))
                if candidate <= now_local.replace(tzinfo=None) and h < 12:
                    evening = candidate + timedelta(hours=12)
                    if evening > now_local.replace(tzinfo=None):
                        h += 12
    local = datetime.combine(base_day, time(h, minute))
    if not rrule_parts and day is None and local <= now_local.replace(tzinfo=None):
        local += timedelta(days=1)
    if rrule_parts:
        local = _first_occurrence(rrule_parts, local, now_local.replace(tzinfo=None))
    return When(local, timezone, _rrule(rrule_parts), explicit_time=explicit_time, explicit_day=explicit_day, spans=sorted(spans))


def _rrule(parts: dict[str, str]) -> str | None:
    if not parts:
        return None
    order = ("FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY")
    return ";".join(f"{k}={parts[k]}" for k in order if k in parts)


def _first_occurrence(parts: dict[str, str], start: datetime, now_local: datetime) -> datetime:
    from dateutil.rrule import rrulestr

    rule = rrulestr("RRULE:" + _rrule(parts), dtstart=start.replace(hour=start.hour, minute=start.minute))
    nxt = rule.after(now_local, inc=True)
    if nxt is None:
        return start
    # Keep the anchor on the requested weekday even for an interval rule.
    return nxt


def day_range(text: str, *, lang: str, timezone: str, now: datetime) -> DayRange | None:
    """The local day(s) a list/cancel/calendar request names: today, tomorrow, a weekday, a date, this or next week."""
    lex = lexicon(lang)
    zone = ZoneInfo(timezone)
    today = now.astimezone(zone).date()
    t = text.lower()
    label = ""
    day: date | None = None
    days = 1
    span: tuple[int, int] | None = None
    for pattern, delta, name in ((lex.after_tomorrow, 2, "after_tomorrow"), (lex.tomorrow, 1, "tomorrow"), (lex.tonight, 0, "today"), (lex.today, 0, "today")):
        mm = _first(rf"(?<!\w)(?:for |of |on )?(?:{pattern})(?:'s)?(?!\w)", t)
        if mm:
            day, label, span = today + timedelta(days=delta), name, mm.span()
            break
    if day is None:
        wd = _first(rf"(?<!\w)(?:for |on )?(?P<pre>{lex.next_word})?{_weekday_pattern(lex)}(?:'s)?(?!\w)", t)
        if wd:
            day, label, span = _next_weekday(today, lex.weekdays[wd.group("wd")], include_today=True), "weekday", wd.span()
    if day is None:
        mm = _first(r"\b(?:this|the) week(?:'s)?\b|\bdiese woche\b|\besta semana\b|\bcette semaine\b", t)
        if mm:
            day, days, label, span = today, 7 - today.weekday(), "week", mm.span()
    if day is None:
        mm = _first(r"\bnext week(?:'s)?\b|\bnächste woche\b|\bnaechste woche\b|\b(?:la )?próxima semana\b|\b(?:la )?proxima semana\b"
                    r"|\bla semana que viene\b|\bla semaine prochaine\b|अगले हफ्ते|اگلے ہفتے", t)
        if mm:
            day, days, label, span = today + timedelta(days=7 - today.weekday()), 7, "next_week", mm.span()
    if day is None:
        for pattern in _ABS_DATES.get(lang, []):
            mm = _first(pattern, t)
            if mm:
                parsed = _parse_abs_date(mm.group(0), lang, today)
                if parsed:
                    day, label, span = parsed, "date", mm.span()
                    break
    if day is None:
        return None
    start = datetime.combine(day, time(0, 0), tzinfo=zone)
    end = datetime.combine(day + timedelta(days=days), time(0, 0), tzinfo=zone)
    return DayRange(start=start, end=end, label=label, spans=[span] if span else [])


# --- titles ---------------------------------------------------------------------------

_COMMAND_PREFIXES = {
    "en": [
        r"(?:hey |ok |okay )?(?:eindr,? )?",
        r"(?:please |kindly )?(?:can you |could you |would you |will you )?(?:please )?",
        r"(?:set|create|add|make|schedule|get me|give me) (?:me )?(?:a |an |one )?(?:new )?(?:alarm-style )?reminders?(?: for me)?(?: called| named| titled| saying| that says| to| for| about| that)?",
        r"(?:i need|i want|i'd like) (?:a |you to )?(?:to be )?remind(?:er|ed)?(?: me)?(?: to| about| of| that)?",
        r"(?:remind|ping|nudge|alert|tell|notify) me(?: again)?(?: to| about| of| that| when to)?",
        r"(?:don't|do not) let me forget(?: to| about)?",
        r"make sure i (?:remember to|don't forget to)",
    ],
    "es": [r"(?:por favor )?(?:recuérdame|recuerdame|recordarme|pon(?:me)? un recordatorio(?: para)?|crea un recordatorio(?: para)?)(?: que| de| para)?"],
    "de": [r"(?:bitte )?(?:erinnere mich|erinner mich|stelle eine erinnerung|erstelle eine erinnerung)(?: bitte)?(?: daran,?)?(?: an| zu| dass| für)?"],
    "fr": [r"(?:s'il te plaît |stp )?(?:rappelle-moi|rappelle moi|rappelez-moi|crée un rappel|mets un rappel)(?: de| d'| que| pour)?"],
    "hi": [r"(?:मुझे )?(?:याद दिलाना|याद दिला देना|याद दिलाओ|रिमाइंडर लगाओ)"],
    "ur": [r"(?:مجھے )?(?:یاد دلانا|یاد دلا دینا|یاد دلاؤ|ریمائنڈر لگاؤ)"],
}
_TRAILING_WORDS = r"(?:of|please|thanks|thank you|for me|por favor|bitte|s'il te plaît|merci|to|at|on|for|by|a las|a la|um|am|à|le|el|and|then)"
_EDGE_WORDS = r"(?:to|about|that|at|on|for|by|in|and|then|de|d'|que|a|à|an|zu|dass|um|am|el|le|para)"


def strip_spans(text: str, spans: list[tuple[int, int]]) -> str:
    out, last = [], 0
    for s, e in sorted(spans):
        if s < last:
            continue
        out.append(text[last:s])
        last = e
    out.append(text[last:])
    return " ".join("".join(out).split())


def reminder_title(text: str, *, lang: str, spans: list[tuple[int, int]] | None = None) -> str:
    """'remind me to call mum tomorrow at five' (with the time span) → 'Call mum'."""
    t = strip_spans(text, spans or [])
    t = t.strip(" ,.!?;:¿¡।")
    for pattern in _COMMAND_PREFIXES.get("en", []) + (_COMMAND_PREFIXES.get(lang, []) if lang != "en" else []):
        t = re.sub(rf"^{pattern}\s*", "", t, flags=re.IGNORECASE).strip(" ,.")
    if lang in ("hi", "ur"):
        # Commands end the sentence in Hindi/Urdu: "... याद दिलाना".
        for pattern in _COMMAND_PREFIXES[lang]:
            t = re.sub(rf"\s*{pattern}$", "", t).strip(" ,.।")
        t = re.sub(r"^(?:मुझे|مجھے)\s+", "", t)
        t = re.sub(r"\s+(?:को|کو)$", "", t)
    for _ in range(3):
        t = re.sub(rf"^{_EDGE_WORDS}\s+", "", t, flags=re.IGNORECASE)
        t = re.sub(rf"\s+{_TRAILING_WORDS}$", "", t, flags=re.IGNORECASE)
        t = t.strip(" ,.!?;:")
    if not t:
        return ""
    return t[0].upper() + t[1:]


# --- amounts --------------------------------------------------------------------------

_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY", "₹": "INR", "₨": "PKR", "₩": "KRW", "₺": "TRY", "₽": "RUB"}
_CURRENCY_WORDS = [
    (r"us dollars?|dollars?|bucks|dólares|dolares|dollar", "USD"),
    (r"euros?|eur", "EUR"),
    (r"pounds?(?: sterling)?|quid|libras?|pfund", "GBP"),
    (r"yen", "JPY"),
    (r"rupees?|rupias?|rs\.?|रुपये|रुपए|रुपया|روپے|روپیہ", "RUPEE"),
    (r"pkr", "PKR"),
    (r"inr", "INR"),
    (r"usd", "USD"),
    (r"gbp", "GBP"),
    (r"dirhams?|aed", "AED"),
    (r"riyals?|sar", "SAR"),
    (r"francs?|chf", "CHF"),
    (r"cad", "CAD"),
    (r"aud", "AUD"),
]
_NUM = r"\d{1,3}(?:[,\s]\d{3})+(?:\.\d+)?|\d+(?:[.,]\d{1,2})?"


@dataclass
class Amount:
    value: Decimal
    currency: str
    span: tuple[int, int]


def _to_decimal(raw: str) -> Decimal | None:
    raw = raw.strip()
    if re.fullmatch(r"\d{1,3}(?:[,\s]\d{3})+(?:\.\d+)?", raw):
        raw = raw.replace(",", "").replace(" ", "")
    elif re.fullmatch(r"\d+,\d{1,2}", raw):
        raw = raw.replace(",", ".")
    try:
        return Decimal(raw)
    except InvalidOperation:
        return None


def default_currency(lang_tag: str | None) -> str:
    """The currency of the user's locale ('en-GB' → GBP, 'hi' → INR, 'ur' → PKR), USD otherwise."""
    tag = (lang_tag or "en").replace("_", "-")
    lang = primary_language(tag)
    parts = tag.split("-")
    region = next((p.upper() for p in parts[1:] if len(p) == 2 and p.isalpha()), None)
    region = region or {"hi": "IN", "ur": "PK", "de": "DE", "fr": "FR", "es": "ES", "en": "US"}.get(lang)
    if region:
        try:
            from babel.numbers import get_territory_currencies

            found = get_territory_currencies(region)
            if found:
                return found[0]
        except Exception:  # noqa: BLE001, S110 (an unknown region: the default currency below)
            pass
    return "USD"


def _rupee(lang_tag: str | None) -> str:
    return "PKR" if primary_language(lang_tag) == "ur" or (lang_tag or "").upper().endswith("-PK") else "INR"


def parse_amount(text: str, *, lang: str, lang_tag: str | None = None) -> Amount | None:
    """'twenty dollars' / 'Rs 500' / '€12.50' / '12,50 €' → Amount(Decimal, ISO 4217)."""
    t = normalize_numbers(text, lang)
    words = "|".join(f"(?:{w})" for w, _ in _CURRENCY_WORDS)
    sym = "|".join(re.escape(s) for s in _SYMBOLS)
    patterns = [
        rf"(?P<sym>{sym})\s?(?P<num>{_NUM})",
        rf"(?<![\w.])(?P<word>{words})\.?\s?(?P<num>{_NUM})(?!\d)",
        rf"(?P<num>{_NUM})\s?(?P<sym>{sym})",
        rf"(?P<num>{_NUM})\s?(?P<word>{words})(?!\w)",
    ]
    for pattern in patterns:
        m = re.search(pattern, t, flags=re.IGNORECASE)
        if not m:
            continue
        value = _to_decimal(m.group("num"))
        if value is None or value <= 0:
            continue
        if m.groupdict().get("sym"):
            currency = _SYMBOLS[m.group("sym")]
            if currency == "INR" and m.group("sym") == "₨":
                currency = _rupee(lang_tag)
        else:
            word = m.group("word").lower()
            currency = next(code for w, code in _CURRENCY_WORDS if re.fullmatch(w, word, flags=re.IGNORECASE))
            if currency == "RUPEE":
                currency = _rupee(lang_tag)
            # "12 dollars 50" / "12 dollars and 50 cents"
            tail = re.match(r"\s*(?:and )?(\d{1,2})(?: cents?)?\b", t[m.end():])
            if tail and value == value.to_integral_value() and re.search(r"cents?", t[m.end():m.end() + tail.end() + 6]):
                value = value + Decimal(tail.group(1)) / 100
        return Amount(value=value, currency=currency, span=m.span())
    m = re.search(rf"(?<![\w:.])(?P<num>{_NUM})(?![\w:])", t)
    if m:
        value = _to_decimal(m.group("num"))
        if value is not None and value > 0:
            return Amount(value=value, currency=default_currency(lang_tag or lang), span=m.span())
    return None


# --- ledger direction and contacts ------------------------------------------------------

_NAME = r"(?P<name>[^\W\d_][\w'\-]*)"
_STOP_NAMES = {"me", "i", "you", "my", "the", "a", "an", "him", "her", "them", "us", "back", "money", "dollars", "to", "from"}

_LEDGER_PATTERNS_EN = [
    (rf"\b{_NAME} owes me\b", "they_owe_me"),
    (rf"\bi owe {_NAME}\b", "i_owe_them"),
    (rf"\bi lent {_NAME}\b", "they_owe_me"),
    (rf"\bi loaned {_NAME}\b", "they_owe_me"),
    (rf"\bi gave {_NAME}\b", "they_owe_me"),
    (rf"\b{_NAME} lent me\b", "i_owe_them"),
    (rf"\b{_NAME} loaned me\b", "i_owe_them"),
    (rf"\b{_NAME} gave me\b", "i_owe_them"),
    (rf"\b{_NAME} paid for me\b", "i_owe_them"),
    (rf"\bi borrowed .*? from {_NAME}\b", "i_owe_them"),
    (rf"\bborrowed from {_NAME}\b", "i_owe_them"),
    (rf"\b{_NAME} borrowed\b", "they_owe_me"),
    (rf"\bi paid for {_NAME}\b", "they_owe_me"),
    (rf"\bi covered {_NAME}\b", "they_owe_me"),
    (rf"\b(?:lent|loaned|gave) .*? to {_NAME}\b", "they_owe_me"),
]
_LEDGER_PATTERNS_OTHER = {
    "es": [(rf"\b{_NAME} me debe\b", "they_owe_me"), (rf"\ble debo (?:\S+ )*?a {_NAME}\b", "i_owe_them"), (rf"\bdebo (?:\S+ )*?a {_NAME}\b", "i_owe_them")],
    "de": [(rf"\b{_NAME} schuldet mir\b", "they_owe_me"), (rf"\bich schulde {_NAME}\b", "i_owe_them")],
    "fr": [(rf"\b{_NAME} me doit\b", "they_owe_me"), (rf"\bje dois (?:\S+ )*?à {_NAME}\b", "i_owe_them")],
}


@dataclass
class LedgerSlots:
    name: str | None
    direction: str | None
    amount: Amount | None


def parse_ledger(text: str, *, lang: str, lang_tag: str | None = None) -> LedgerSlots:
    amount = parse_amount(text, lang=lang, lang_tag=lang_tag)
    name: str | None = None
    direction: str | None = None
    t = normalize_numbers(text, lang).strip(" .!?")
    for pattern, dirn in _LEDGER_PATTERNS_OTHER.get(lang, []) + _LEDGER_PATTERNS_EN:
        m = re.search(pattern, t, flags=re.IGNORECASE)
        if m and m.group("name").lower() not in _STOP_NAMES:
            name, direction = m.group("name"), dirn
            break
    if name is None:
        name = contact_mention(t)
    return LedgerSlots(name=_clean_name(name) if name else None, direction=direction, amount=amount)


def contact_mention(text: str) -> str | None:
    """A contact named after 'with/to/from/for/does/did/paid' ('how much does Ali owe me' → Ali)."""
    for pattern in (
        rf"\b(?:with|to|from|for|does|did|paid|settle up with|settled with|square with|pay back|paid back) {_NAME}",
        rf"\b{_NAME}(?: has)? (?:paid me back|paid me|settled|squared up)",
    ):
        for m in re.finditer(pattern, text, flags=re.IGNORECASE):
            cand = m.group("name")
            if cand.lower() not in _STOP_NAMES and not cand.isdigit():
                return cand
    return None


def _clean_name(name: str) -> str:
    name = re.sub(r"'s$", "", name.strip(" ,.!?"))
    return " ".join(part[:1].upper() + part[1:] for part in name.split())


def match_contact(name: str, contacts: list[str], *, threshold: float = 75.0) -> str | None:
    """The known contact ``name`` refers to (case, accents and small misspellings), or None."""
    if not contacts:
        return None
    from rapidfuzz import fuzz, process, utils

    best = process.extractOne(name, contacts, scorer=fuzz.WRatio, processor=utils.default_process)
    if best and best[1] >= threshold:
        return best[0]
    return None


# --- notes and search -----------------------------------------------------------------

_NOTE_PREFIXES = [
    r"(?:please |can you |could you )?(?:take|make|add|create|save|write(?: down)?|jot(?: down)?) (?:a |this |that )?(?:quick |new )?(?:note|memo)(?: that| saying| to self| of| about)?:?",
    r"(?:note|memo)(?: to self)?:?",
    r"(?:please )?(?:write down|jot down|remember|save|note) (?:that )?",
    r"nota:?|notiz:?|note :?",
]


def note_text(text: str) -> str:
    t = text.strip()
    for pattern in _NOTE_PREFIXES:
        new = re.sub(rf"^{pattern}\s*", "", t, flags=re.IGNORECASE).strip(" ,:")
        if new != t:
            t = new
            break
    t = t.strip()
    return t[:1].upper() + t[1:] if t else ""


_SEARCH_PREFIXES = [
    r"(?:please |can you |could you )?(?:search|look|find|check|show|read)(?: up| for| through| in| me)*(?: my)? (?:notes?|memos?)(?: for| about| on| where i wrote| that mention)?",
    r"(?:what|where) (?:did|do) i (?:note|write|save|jot)(?: down)?(?: about)?",
    r"(?:do i have|did i make) (?:a |any )?notes? (?:about|on|for)",
    r"find (?:the |my )?notes? (?:about|on|for|with)",
]


def search_query(text: str) -> str:
    t = text.strip(" ?.!")
    for pattern in _SEARCH_PREFIXES:
        new = re.sub(rf"^{pattern}\s*", "", t, flags=re.IGNORECASE).strip(" ,:")
        if new != t:
            return new or t
    return t


_CANCEL_PREFIXES = r"^(?:please )?(?:cancel|delete|remove|clear|turn off|stop|get rid of|drop|i don't need)(?: all)?(?: of)?(?: my| the)?(?: reminders?| alarms?)?(?: reminding me)?(?: to| about| for| called| named)?\s*"


def reminder_query(text: str, spans: list[tuple[int, int]]) -> str | None:
    """The words naming which reminder to cancel/snooze: 'cancel my reminder to call mum' → 'call mum'."""
    t = strip_spans(text, spans).strip(" ?.!")
    t = re.sub(_CANCEL_PREFIXES, "", t, flags=re.IGNORECASE)
    t = re.sub(r"^(?:snooze|postpone|delay|push back|push)(?: my| the)?(?: reminders?)?(?: to| about| for)?\s*", "", t, flags=re.IGNORECASE)
    t = re.sub(r"\b(?:reminders?|anymore|any more|please|all|my|the)\b", " ", t, flags=re.IGNORECASE)
    t = re.sub(r"\b(?:for|by|until|to|about|on)\s*$", "", " ".join(t.split()), flags=re.IGNORECASE)
    t = re.sub(r"^(?:for|about|to|on|that|'s)\s+", "", t.strip(), flags=re.IGNORECASE)
    t = " ".join(t.split()).strip(" ,'")
    if not t or t.lower() in ("it", "that", "this", "them", "everything", "s"):
        return None
    return t


def is_all(text: str) -> bool:
    return bool(re.search(r"\b(?:all|every|everything|todos|todas|alle|tous|toutes)\b|सब|سب", text, flags=re.IGNORECASE))


def snooze_minutes(text: str, lang: str) -> int | None:
    lex = lexicon(lang)
    t = normalize_numbers(text.lower(), lang)
    m = re.search(r"(?:for|by) (?P<n>\d+|an?|one|half an?) (?P<unit>minutes?|mins?|hours?|hrs?)\b", t)
    m = m or re.search(lex.relative, t, flags=re.IGNORECASE)
    if not m:
        return None
    n = _count(m.group("n"), lex)
    unit = _unit(m.group("unit"), lex)
    return max(1, int(n * (60 if unit == "hours" else 1 if unit == "minutes" else 1440)))


# --- confirmation answers ---------------------------------------------------------------

_YES = {
    "en": r"yes|yeah|yep|yup|sure|ok|okay|do it|go ahead|confirm|please do|correct|right",
    "es": r"sí|si|claro|vale|de acuerdo|hazlo|confirmo",
    "de": r"ja|jawohl|klar|okay|mach das|bestätigen",
    "fr": r"oui|ouais|d'accord|vas-y|confirme",
    "hi": r"हाँ|हां|हा|जी हाँ|ठीक है|haan",
    "ur": r"ہاں|جی ہاں|ٹھیک ہے|haan",
}
_NO = {
    "en": r"no|nope|nah|don't|do not|cancel that|never mind|nevermind|stop|keep them|wait",
    "es": r"no|nada|mejor no",
    "de": r"nein|nee|lieber nicht|abbrechen",
    "fr": r"non|pas question|annule",
    "hi": r"नहीं|ना|nahin",
    "ur": r"نہیں|نا|nahin",
}


def yes_no(text: str, lang: str) -> bool | None:
    t = text.lower().strip(" .!?¡¿,।")
    for table, answer in ((_NO, False), (_YES, True)):
        pattern = "|".join(p for p in (table.get(lang), table["en"]) if p)
        if re.fullmatch(rf"(?:{pattern})(?:[ ,]+(?:please|thanks|thank you|por favor|bitte|merci|do it|go ahead))*", t):
            return answer
        if re.match(rf"^(?:{pattern})\b[ ,]", t) and len(t.split()) <= 6:
            return answer
    return None


# --- command verbs of languages the intent model does not cover --------------------------------

_COMMAND_HINTS: dict[str, list[tuple[str, str]]] = {
    "es": [
        (r"\b(?:comparte|compartir|comparta)\b", "share_with_friend"),
        (r"\bcalendario\b|\bagenda\b|\bqu[eé] tengo (?:hoy|mañana|manana|el|esta|este)\b", "calendar_query"),
        (r"\b(?:cancela|borra|elimina|quita)\b.*\brecordatorio", "cancel_reminder"),
        (r"\b(?:qué|cuáles|cuales|que) (?:recordatorios|son mis recordatorios)|\bmis recordatorios\b", "list_reminders"),
        (r"\brecu[eé]rdame\b|\brecordatorio\b|\bav[ií]same\b", "create_reminder"),
        (r"\b(?:me debe|le debo|debo)\b", "ledger_add"),
        (r"\b(?:anota|apunta|toma nota)\b|^nota\b", "add_note"),
    ],
    "de": [
        (r"\bteile?\b.*\bmit\b", "share_with_friend"),
        (r"\bkalender\b|\bwas habe ich (?:heute|morgen|am|diese|nächste)\b|\bwas steht (?:heute|morgen|am|diese|nächste)\b", "calendar_query"),
        (r"\b(?:lösche|entferne|storniere)\b.*\berinnerung", "cancel_reminder"),
        (r"\b(?:welche|was sind meine) erinnerungen\b|\bmeine erinnerungen\b", "list_reminders"),
        (r"\berinnere? mich\b|\berinnerung\b", "create_reminder"),
        (r"\b(?:schuldet mir|ich schulde)\b", "ledger_add"),
        (r"\b(?:notiere|notiz|schreib auf)\b", "add_note"),
    ],
    "fr": [
        (r"\bpartager?\b|\bpartagez\b", "share_with_friend"),
        (r"\bagenda\b|\bcalendrier\b|\bqu'est-ce que j'ai (?:aujourd'hui|demain|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|cette)\b", "calendar_query"),
        (r"\b(?:annule|supprime|efface)\b.*\brappels?\b", "cancel_reminder"),
        (r"\b(?:quels sont mes|mes) rappels\b", "list_reminders"),
        (r"\brappelle[- ]moi\b|\brappelez[- ]moi\b|\brappel\b", "create_reminder"),
        (r"\b(?:me doit|je dois)\b", "ledger_add"),
        (r"\b(?:note|prends note)\b", "add_note"),
    ],
    "hi": [
        (r"शेयर|साझा", "share_with_friend"),
        (r"कैलेंडर|कार्यक्रम", "calendar_query"),
        (r"(?:रिमाइंडर|याद दिलाना).*(?:रद्द|हटा|कैंसल)", "cancel_reminder"),
        (r"याद दिला|रिमाइंडर", "create_reminder"),
        (r"उधार|देने हैं|देना है", "ledger_add"),
        (r"नोट", "add_note"),
    ],
    "ur": [
        (r"شیئر|شریک", "share_with_friend"),
        (r"کیلنڈر|شیڈول", "calendar_query"),
        (r"(?:ریمائنڈر|یاد دہانی).*(?:منسوخ|ہٹا|کینسل)", "cancel_reminder"),
        (r"یاد دلا|ریمائنڈر|یاد دہانی", "create_reminder"),
        (r"ادھار|دینے ہیں|دینا ہے", "ledger_add"),
        (r"نوٹ", "add_note"),
    ],
}


_REMINDER_COMMAND_EN = re.compile(r"^\W*(?:please |hey |ok |okay )?(?:remind me|set (?:me )?a reminder|don't let me forget|do not let me forget)\b",
                                  flags=re.IGNORECASE)


def starts_as_reminder(text: str) -> bool:
    """'remind me to share the slides with Omar at 9' asks for a reminder, not a share."""
    return bool(_REMINDER_COMMAND_EN.match(text))


def command_hint(text: str, lang: str) -> str | None:
    """The intent a command verb in ``lang`` names unambiguously ("recuérdame" → create_reminder),
    for languages the English intent model does not cover; None when no such verb is there."""
    for pattern, intent in _COMMAND_HINTS.get(lang, []):
        if re.search(pattern, text, flags=re.IGNORECASE):
            return intent
    return None


# --- sharing with a friend -----------------------------------------------------------------

# "<verb> <item> with <friend>" per language; Hindi and Urdu put the friend before
# "के साथ / کے ساتھ" and the verb last. ``item`` and ``name`` are cleaned afterwards.
_SHARE_PATTERNS: dict[str, list[str]] = {
    "en": [
        r"^(?:please )?(?:can you |could you |would you )?(?:please )?(?:share|send|forward|show)\s+(?P<item>.+)\s+with\s+(?P<name>.+)$",
        r"^(?:please )?(?:can you |could you |would you )?(?:please )?(?:share|send|forward|show)\s+(?P<item>.+)\s+to\s+(?P<name>.+)$",
        r"^(?:please )?(?:let|allow)\s+(?P<name>.+?)\s+(?:to\s+)?(?P<verb>see|view|read|edit|change|access|have)\s+(?P<item>.+)$",
        r"^(?:please )?give\s+(?P<name>.+?)\s+(?:(?P<verb>read|view|edit|write)\s+)?access\s+to\s+(?P<item>.+)$",
        r"^(?:please )?make\s+(?P<item>.+?)\s+visible\s+to\s+(?P<name>.+)$",
    ],
    # "with" before "to": the item itself may contain "a"/"an"/"à" ("ir a la playa").
    "es": [r"^(?:por favor )?(?:comparte|compartir|comparta|envía|envia|manda)(?:le)?\s+(?P<item>.+)\s+con\s+(?P<name>.+)$",
           r"^(?:por favor )?(?:envía|envia|manda)(?:le)?\s+(?P<item>.+)\s+a\s+(?P<name>.+)$"],
    "de": [r"^(?:bitte )?(?:teile|teil|schicke|schick|sende)\s+(?P<item>.+)\s+mit\s+(?P<name>.+?)(?:\s+(?:bitte|teilen))?$",
           r"^(?:bitte )?(?:schicke|schick|sende)\s+(?P<item>.+)\s+an\s+(?P<name>.+?)(?:\s+bitte)?$"],
    "fr": [r"^(?:s'il te plaît |stp )?(?:partage|partager|partagez|envoie|envoyer)\s+(?P<item>.+)\s+avec\s+(?P<name>.+)$",
           r"^(?:s'il te plaît |stp )?(?:envoie|envoyer)\s+(?P<item>.+)\s+à\s+(?P<name>.+)$"],
    "hi": [r"^(?:मेरा |मेरी )?(?P<item>.+?)\s+(?P<name>\S+)\s+(?:के साथ|को)\s+(?:शेयर|साझा)"],
    "ur": [r"^(?:میرا |میری )?(?P<item>.+?)\s+(?P<name>\S+)\s+(?:کے ساتھ|کو)\s+(?:شیئر|شریک)"],
}
_REMINDER_WORDS = r"reminders?|recordatorios?|erinnerung(?:en)?|rappels?|रिमाइंडर|याद दहानी|یاد دہانی|ریمائنڈر"
_NOTE_WORDS = r"notes?|memos?|notas?|notiz(?:en)?|नोट|نوٹ"
_ITEM_FILLER = (
    r"my|the|this|that|a|an|our|about|called|named|titled|for|on|of|with|to|"
    r"mi|mis|el|la|los|las|un|una|del|de|sobre|al|lo|"
    r"meine|mein|meinen|die|den|das|der|an|über|zum|zur|vom|von|"
    r"mon|ma|mes|le|les|du|des|sur|d'|l'|"
    r"मेरा|मेरी|मेरे|वाला|वाली|वाले|का|की|के|"
    r"میرا|میری|میرے|والا|والی|والے|کا|کی|کے"
)
_NAME_TAIL = r"\s*(?:,|\bso\b|\band\b|\btoo\b|\bas well\b|\bplease\b|\bthanks\b|\bpor favor\b|\bbitte\b|\bs'il te plaît\b|\btambién\b|\bauch\b|\baussi\b).*$"


@dataclass
class ShareSlots:
    friend: str | None
    item_type: str | None  # reminder | note | None (not said: reminders first, then notes)
    query: str | None  # words naming the item ("dentist")
    access: str  # view | edit


def parse_share(text: str, *, lang: str) -> ShareSlots:
    """'share my dentist reminder with Ali' → friend 'Ali', a reminder about 'dentist', view."""
    t = " ".join(text.strip().strip(" .!?¿¡।۔").split())
    item_raw = name_raw = verb = None
    for pattern in _SHARE_PATTERNS.get(lang, []) + (_SHARE_PATTERNS["en"] if lang != "en" else []):
        m = re.search(pattern, t, flags=re.IGNORECASE)
        if m:
            item_raw, name_raw, verb = m.group("item"), m.group("name"), m.groupdict().get("verb")
            break
    access = "edit" if re.search(r"\b(?:edit|change|write|modify|editar|bearbeiten|ändern|modifier)\b", t, flags=re.IGNORECASE) \
        or (verb or "").lower() in ("edit", "change", "write") else "view"
    if item_raw is None:
        # "share my dentist reminder": the item without a friend (the assistant asks who).
        m = re.search(r"^(?:please |por favor |bitte )?(?:can you |could you )?(?:share|send|forward|comparte|compartir|teile|teil|partage|partager)\s+(?P<item>.+)$",
                      t, flags=re.IGNORECASE)
        return ShareSlots(friend=None, item_type=_item_type(t), query=_item_query(m.group("item")) if m else None, access=access)
    name = re.sub(_NAME_TAIL, "", name_raw or "", flags=re.IGNORECASE).strip(" ,.'")
    name = re.sub(r"^(?:my|mi|mein|meine|mon|ma)\s+", "", name, flags=re.IGNORECASE)
    name = re.sub(r"'s$", "", name)
    words = name.split()[:3]
    return ShareSlots(friend=" ".join(words) or None, item_type=_item_type(item_raw), query=_item_query(item_raw), access=access)


def _item_type(text: str) -> str | None:
    if re.search(rf"(?<!\w)(?:{_REMINDER_WORDS})(?!\w)", text, flags=re.IGNORECASE):
        return "reminder"
    if re.search(rf"(?<!\w)(?:{_NOTE_WORDS})(?!\w)", text, flags=re.IGNORECASE):
        return "note"
    return None


def _item_query(item: str) -> str | None:
    t = re.sub(rf"(?<!\w)(?:{_REMINDER_WORDS}|{_NOTE_WORDS})(?!\w)", " ", item, flags=re.IGNORECASE)
    t = re.sub(r"(?<=\w)['’]s\b", "", t)  # Whisper writes "my dentist's reminder"
    t = re.sub(r"\b(?:so|and) (?:he|she|they) can .*$|\bwith (?:edit|read|view) access\b", " ", t, flags=re.IGNORECASE)
    words = [w for w in re.split(r"\s+", t.strip(" ,.'")) if w]
    filler = re.compile(rf"^(?:{_ITEM_FILLER})$", flags=re.IGNORECASE)
    while words and filler.match(words[0]):
        words.pop(0)
    while words and filler.match(words[-1]):
        words.pop()
    q = " ".join(words).strip(" ,.'")
    if q.lower() in ("", "it", "that", "this", "them", "lo", "la", "es", "das", "ça", "ca"):
        return None
    return q


def _name_score(heard: str, name: str) -> float:
    """How well a heard name fits a friend's display name: the whole name, or any one part
    of it ("Ali" → "Ali Khan" scores 100; "Ali" → "Alice" only 75)."""
    from rapidfuzz import fuzz, utils

    h, n = utils.default_process(heard), utils.default_process(name)
    if not h or not n:
        return 0.0
    parts = n.split()
    return max([fuzz.ratio(h, n), fuzz.token_sort_ratio(h, n)] + [fuzz.ratio(h, p) for p in parts])


def match_friends(heard: str, friends: list[dict[str, Any]], *, threshold: float = 75.0, margin: float = 10.0) -> list[dict[str, Any]]:
    """The friends ``heard`` may refer to, best first: one → that friend; several → ask which
    (a near tie is never settled by a guess); none → nobody by that name."""
    scored = [(_name_score(heard, f.get("display_name") or ""), f) for f in friends]
    scored = [(s, f) for s, f in scored if s >= threshold]
    if not scored:
        return []
    best = max(s for s, _ in scored)
    return [f for s, f in sorted(scored, key=lambda x: -x[0]) if s >= best - margin]
