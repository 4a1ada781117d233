"""Slot extraction is pure: every rule against a fixed clock (Thursday 26 Nov 2026, 15:10 in Amsterdam)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from eindr_assistant import slots

NOW = datetime(2026, 11, 26, 14, 10, tzinfo=UTC)  # Thursday; 15:10 CET
TZ = "Europe/Amsterdam"


def when(text: str, lang: str = "en", tz: str = TZ, now: datetime = NOW):
    t = slots.normalize_numbers(text, lang)
    w = slots.parse_when(t, lang=lang, timezone=tz, now=now)
    title = slots.reminder_title(t, lang=lang, spans=w.spans if w else [])
    return w, title


@pytest.mark.parametrize(
    "text, local, rrule, title",
    [
        ("remind me to call mum tomorrow at five", "2026-11-27T17:00", None, "Call mum"),
        ("remind me to call mum tomorrow at 5 pm", "2026-11-27T17:00", None, "Call mum"),
        ("Remind me to call mum tomorrow at 5.", "2026-11-27T17:00", None, "Call mum"),
        ("remind me to call my mother tomorrow at 5 p.m.", "2026-11-27T17:00", None, "Call my mother"),
        ("remind me tomorrow at 9 am to bring the laptop charger", "2026-11-27T09:00", None, "Bring the laptop charger"),
        ("remind me next friday to email Sarah", "2026-11-27T09:00", None, "Email Sarah"),
        ("remind me on monday to email Sarah", "2026-11-30T09:00", None, "Email Sarah"),
        ("in twenty minutes remind me to check the oven", "2026-11-26T15:30", None, "Check the oven"),
        ("remind me in an hour to move the car", "2026-11-26T16:10", None, "Move the car"),
        ("remind me in two hours to call Ali", "2026-11-26T17:10", None, "Call Ali"),
        ("remind me in half an hour to stretch", "2026-11-26T15:40", None, "Stretch"),
        ("remind me to buy milk at 6:30", "2026-11-26T18:30", None, "Buy milk"),
        ("remind me to take the pills at eight tonight", "2026-11-26T20:00", None, "Take the pills"),
        ("remind me at half past two to call the bank", "2026-11-27T14:30", None, "Call the bank"),
        ("remind me to call Ali at noon", "2026-11-27T12:00", None, "Call Ali"),
        ("remind me on June 3rd to buy a gift", "2027-06-03T09:00", None, "Buy a gift"),
        ("set a reminder for the dentist on the 15th at 10 am", "2026-12-15T10:00", None, "The dentist"),
        ("remind me to pay rent the day after tomorrow", "2026-11-28T09:00", None, "Pay rent"),
        ("remind me to buy flowers for mum on sunday morning", "2026-11-29T09:00", None, "Buy flowers for mum"),
        ("remind me every other monday at nine to water the plants", "2026-11-30T09:00", "FREQ=WEEKLY;INTERVAL=2;BYDAY=MO", "Water the plants"),
        ("remind me every day at 8 am to take my vitamins", "2026-11-27T08:00", "FREQ=DAILY", "Take my vitamins"),
        ("remind me every weekday at 7:30 am to stand up", "2026-11-27T07:30", "FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR", "Stand up"),
        ("remind me every friday to submit my timesheet", "2026-11-27T09:00", "FREQ=WEEKLY;BYDAY=FR", "Submit my timesheet"),
        ("remind me to pay rent on the first of every month", "2026-12-01T09:00", "FREQ=MONTHLY;BYMONTHDAY=1", "Pay rent"),
        ("remind me every monday and wednesday at 6 pm to go running", "2026-11-30T18:00", "FREQ=WEEKLY;BYDAY=MO,WE", "Go running"),
        ("don't let me forget to water the plants on saturday", "2026-11-28T09:00", None, "Water the plants"),
        ("set a reminder to call the plumber at ten tomorrow", "2026-11-27T10:00", None, "Call the plumber"),
    ],
)
def test_english_times_titles_and_rules(text, local, rrule, title):
    w, got_title = when(text)
    assert w is not None
    assert w.local_due.isoformat(timespec="minutes") == local
    assert w.rrule == rrule
    assert got_title == title


@pytest.mark.parametrize(
    "lang, text, local, rrule, title",
    [
        ("es", "recuérdame llamar a mamá mañana a las cinco", "2026-11-27T17:00", None, "Llamar a mamá"),
        ("es", "recuérdame cada lunes a las 9 sacar la basura", "2026-11-30T09:00", "FREQ=WEEKLY;BYDAY=MO", "Sacar la basura"),
        ("de", "erinnere mich morgen um 5 Uhr an den Arzt", "2026-11-27T17:00", None, "Den Arzt"),
        ("de", "erinnere mich jeden Montag um 8 Uhr an das Meeting", "2026-11-30T08:00", "FREQ=WEEKLY;BYDAY=MO", "Das Meeting"),
        ("fr", "rappelle-moi demain à 17 heures d'appeler maman", "2026-11-27T17:00", None, "Appeler maman"),
        ("fr", "rappelle-moi dans 10 minutes de sortir le gâteau", "2026-11-26T15:20", None, "Sortir le gâteau"),
        ("hi", "मुझे कल 5 बजे दवा लेना याद दिलाना", "2026-11-27T17:00", None, "दवा लेना"),
        ("ur", "مجھے کل 5 بجے امی کو فون کرنا یاد دلانا", "2026-11-27T17:00", None, "امی کو فون کرنا"),
    ],
)
def test_other_languages(lang, text, local, rrule, title):
    w, got_title = when(text, lang)
    assert w is not None
    assert w.local_due.isoformat(timespec="minutes") == local
    assert w.rrule == rrule
    assert got_title == title


def test_no_time_at_all_is_none():
    w, title = when("remind me to call mum")
    assert w is None and title == "Call mum"


def test_due_at_carries_the_zone_offset_across_dst():
    # 7 March 2027 is before the US spring-forward (14 March): "every day at 8" stays 08:00 local.
    now = datetime(2027, 3, 13, 20, 0, tzinfo=UTC)
    w, _ = when("remind me every day at 8 am to walk", tz="America/New_York", now=now)
    assert w.local_due.isoformat(timespec="minutes") == "2027-03-14T08:00"
    assert w.due_at.utcoffset().total_seconds() == -4 * 3600  # EDT from the 14th
    assert w.rrule == "FREQ=DAILY"


def test_a_time_already_past_today_is_tomorrow():
    w, _ = when("remind me at 9 am to call the bank")
    assert w.local_due.isoformat(timespec="minutes") == "2026-11-27T09:00"


def test_the_evening_hour_when_the_morning_one_passed_today():
    w, _ = when("remind me today at 9 to call the bank")
    assert w.local_due.isoformat(timespec="minutes") == "2026-11-26T21:00"


@pytest.mark.parametrize(
    "text, lang_tag, value, currency, direction, name",
    [
        ("Ali owes me twenty dollars", "en-US", "20", "USD", "they_owe_me", "Ali"),
        ("I owe Sara Rs 500", "en-IN", "500", "INR", "i_owe_them", "Sara"),
        ("I owe Sara Rs. 500", "ur-PK", "500", "PKR", "i_owe_them", "Sara"),
        ("I lent John €12.50", "en-US", "12.50", "EUR", "they_owe_me", "John"),
        ("Omar owes me 12,50 €", "en-US", "12.50", "EUR", "they_owe_me", "Omar"),
        ("I borrowed 50 pounds from Mike", "en-GB", "50", "GBP", "i_owe_them", "Mike"),
        ("bilal owes me 1,250 rupees", "ur", "1250", "PKR", "they_owe_me", "Bilal"),
        ("Priya lent me 300", "en-IN", "300", "INR", "i_owe_them", "Priya"),
        ("I paid for Tom's lunch, 15 dollars", "en-US", "15", "USD", "they_owe_me", "Tom"),
        ("Ali me debe veinte euros", "es", "20", "EUR", "they_owe_me", "Ali"),
        ("Ali schuldet mir 20 Euro", "de", "20", "EUR", "they_owe_me", "Ali"),
        ("Ali me doit vingt euros", "fr", "20", "EUR", "they_owe_me", "Ali"),
    ],
)
def test_ledger_amounts_directions_contacts(text, lang_tag, value, currency, direction, name):
    got = slots.parse_ledger(text, lang=slots.primary_language(lang_tag), lang_tag=lang_tag)
    assert got.amount is not None and got.amount.value == Decimal(value) and isinstance(got.amount.value, Decimal)
    assert got.amount.currency == currency
    assert got.direction == direction
    assert got.name == name


def test_amount_symbols_and_default_currency():
    assert slots.parse_amount("$20", lang="en").value == Decimal(20)
    assert slots.parse_amount("₹ 99.99", lang="en").currency == "INR"
    assert slots.parse_amount("twelve dollars and fifty cents", lang="en").value == Decimal("12.50")
    assert slots.parse_amount("he owes me 40", lang="de", lang_tag="de-DE").currency == "EUR"
    assert slots.parse_amount("no money here", lang="en") is None


def test_contact_matching_is_fuzzy_but_not_loose():
    assert slots.match_contact("ali", ["Ali", "Omar"]) == "Ali"
    assert slots.match_contact("Omer", ["Ali", "Omar"]) == "Omar"
    assert slots.match_contact("Zed", ["Ali", "Omar"]) is None
    assert slots.match_contact("Ali", []) is None


def test_contact_mentions_in_queries():
    assert slots.parse_ledger("how much does Ali owe me", lang="en").name == "Ali"
    assert slots.parse_ledger("settle up with Omar", lang="en").name == "Omar"


def test_day_ranges_for_listing_and_cancelling():
    r = slots.day_range("cancel all my reminders for tomorrow", lang="en", timezone=TZ, now=NOW)
    assert (r.start.isoformat(), r.end.isoformat(), r.label) == ("2026-11-27T00:00:00+01:00", "2026-11-28T00:00:00+01:00", "tomorrow")
    assert slots.day_range("what are my reminders today", lang="en", timezone=TZ, now=NOW).label == "today"
    assert slots.day_range("borra mis recordatorios de mañana", lang="es", timezone=TZ, now=NOW).label == "tomorrow"
    assert slots.day_range("what are my reminders", lang="en", timezone=TZ, now=NOW) is None


def test_reminder_queries_and_all():
    assert slots.reminder_query("cancel my reminder to call mum", []) == "call mum"
    assert slots.reminder_query("delete the reminder about the dentist", []) == "dentist" or \
        slots.reminder_query("delete the reminder about the dentist", []) == "the dentist"
    text = "cancel all my reminders for tomorrow"
    rng = slots.day_range(text, lang="en", timezone=TZ, now=NOW)
    assert slots.reminder_query(text, rng.spans) is None
    assert slots.is_all("cancel all my reminders")
    assert not slots.is_all("cancel my reminder to call mum")


@pytest.mark.parametrize("text, lang, answer", [
    ("yes", "en", True), ("Yes, please.", "en", True), ("go ahead", "en", True), ("no", "en", False),
    ("No, keep them.", "en", False), ("sí", "es", True), ("nein", "de", False), ("oui", "fr", True),
    ("हाँ", "hi", True), ("نہیں", "ur", False), ("remind me to buy milk", "en", None),
])
def test_yes_no(text, lang, answer):
    assert slots.yes_no(text, lang) is answer


def test_note_and_search_texts():
    assert slots.note_text("note: the wifi password is on the fridge") == "The wifi password is on the fridge"
    assert slots.note_text("take a note that the car is parked on level 3") == "The car is parked on level 3"
    assert slots.search_query("search my notes for wifi password") == "wifi password"
    assert slots.snooze_minutes("snooze it for ten minutes", "en") == 10
    assert slots.snooze_minutes("snooze for an hour", "en") == 60


# --- sharing with a friend and calendar windows ---------------------------------------------


@pytest.mark.parametrize("text, lang, friend, item_type, query, access", [
    ("share my dentist reminder with Ali", "en", "Ali", "reminder", "dentist", "view"),
    ("Share my dentist reminder with Ali.", "en", "Ali", "reminder", "dentist", "view"),
    ("share my reminder to call mum with Ali", "en", "Ali", "reminder", "call mum", "view"),
    ("share my note about the wifi password with Sara so she can edit it", "en", "Sara", "note", "wifi password", "edit"),
    ("let Ali see my dentist reminder", "en", "Ali", "reminder", "dentist", "view"),
    ("give Omar edit access to the packing list", "en", "Omar", None, "packing list", "edit"),
    ("share the shopping list with Ali too", "en", "Ali", None, "shopping list", "view"),
    ("send this reminder to Omar", "en", "Omar", "reminder", None, "view"),
    ("share my dentist reminder", "en", None, "reminder", "dentist", "view"),
    ("Share the dentist's reminder with Sarah.", "en", "Sarah", "reminder", "dentist", "view"),
    ("comparte mi recordatorio de ir a la playa con Ali", "es", "Ali", "reminder", "ir a la playa", "view"),
    ("teile meine Erinnerung an den Zahnarzt mit Ali", "de", "Ali", "reminder", "Zahnarzt", "view"),
    ("partage mon rappel du dentiste avec Ali", "fr", "Ali", "reminder", "dentiste", "view"),
    ("डेंटिस्ट वाला रिमाइंडर अली के साथ शेयर करो", "hi", "अली", "reminder", "डेंटिस्ट", "view"),
    ("ڈینٹسٹ والی یاد دہانی علی کے ساتھ شیئر کرو", "ur", "علی", "reminder", "ڈینٹسٹ", "view"),
])
def test_share_slots(text, lang, friend, item_type, query, access):
    s = slots.parse_share(text, lang=lang)
    assert (s.friend, s.item_type, s.query, s.access) == (friend, item_type, query, access)


FRIENDS = [{"user_id": "u1", "display_name": "Ali Khan"}, {"user_id": "u2", "display_name": "Alina Noor"},
           {"user_id": "u3", "display_name": "Omar Farooq"}, {"user_id": "u4", "display_name": None}]


@pytest.mark.parametrize("heard, want", [
    ("Ali", ["u1"]),  # a whole first name beats a longer name that starts alike (Alina)
    ("ali khan", ["u1"]),
    ("Omer", ["u3"]),  # a small mishearing still matches
    ("Farooq", ["u3"]),
    ("Bob", []),
])
def test_friend_names(heard, want):
    assert [f["user_id"] for f in slots.match_friends(heard, FRIENDS)] == want


def test_two_friends_with_the_heard_name_are_both_candidates():
    two = FRIENDS + [{"user_id": "u5", "display_name": "Ali Raza"}]
    assert sorted(f["user_id"] for f in slots.match_friends("Ali", two)) == ["u1", "u5"]
    assert [f["user_id"] for f in slots.match_friends("Ali Raza", two)] == ["u5"]


@pytest.mark.parametrize("text, lang, intent", [
    ("comparte mi recordatorio del dentista con Ali", "es", "share_with_friend"),
    ("teile die Notiz mit Ali", "de", "share_with_friend"),
    ("partage ma note avec Ali", "fr", "share_with_friend"),
    ("qué tengo mañana en mi calendario", "es", "calendar_query"),
    ("was steht morgen in meinem Kalender", "de", "calendar_query"),
    ("qu'est-ce que j'ai demain dans mon agenda", "fr", "calendar_query"),
    ("कल मेरे कैलेंडर में क्या है", "hi", "calendar_query"),
    ("کل میرے کیلنڈر میں کیا ہے", "ur", "calendar_query"),
    ("erinnere mich morgen an den Termin beim Zahnarzt", "de", "create_reminder"),
])
def test_command_verbs_for_sharing_and_calendar(text, lang, intent):
    assert slots.command_hint(text, lang) == intent


def test_next_week_is_monday_to_sunday():
    rng = slots.day_range("what's on my calendar next week", lang="en", timezone=TZ, now=NOW)
    assert rng.label == "next_week"
    assert (rng.start.isoformat(), rng.end.isoformat()) == ("2026-11-30T00:00:00+01:00", "2026-12-07T00:00:00+01:00")
    assert slots.day_range("was habe ich nächste woche", lang="de", timezone=TZ, now=NOW).label == "next_week"


def test_agenda_expands_recurring_reminders_in_their_zone():
    from eindr_assistant import agenda

    zone = ZoneInfo(TZ)
    start, end = datetime(2027, 3, 27, tzinfo=zone), datetime(2027, 3, 30, tzinfo=zone)  # over the spring DST change
    daily = {"id": "r1", "title": "Stand-up", "status": "scheduled", "rrule": "FREQ=DAILY", "timezone": TZ,
             "local_due": "2026-11-27T09:00:00", "due_at": "2026-11-27T08:00:00+00:00", "exdates": ["2027-03-28T09:00:00"]}
    once = {"id": "r2", "title": "Dentist", "status": "scheduled", "rrule": None, "due_at": "2027-03-29T08:00:00+00:00"}
    gone = {"id": "r3", "title": "Cancelled", "status": "cancelled", "rrule": None, "due_at": "2027-03-29T09:00:00+00:00"}
    got = [(e["title"], e["at"].astimezone(zone).isoformat()) for e in agenda.occurrences([daily, once, gone, daily], start, end)]
    assert got == [
        ("Stand-up", "2027-03-27T09:00:00+01:00"),  # the 28th is an exdate
        ("Stand-up", "2027-03-29T09:00:00+02:00"),  # still 09:00 on the wall clock after the change
        ("Dentist", "2027-03-29T10:00:00+02:00"),
    ]


def test_a_sentence_asking_for_a_reminder_is_not_a_share():
    assert slots.starts_as_reminder("Remind me to share the slides with Omar tomorrow at 9.")
    assert slots.starts_as_reminder("please don't let me forget to send Ali the photos")
    assert not slots.starts_as_reminder("share my reminder about the slides with Omar")


def test_every_reply_template_exists_in_the_six_languages_and_fills():
    import string

    from eindr_assistant import replies

    for key, table in replies.T.items():
        assert set(table) >= set(replies.LANGUAGES), key
        fields = {f for text in table.values() for _, f, _, _ in string.Formatter().parse(text) if f}
        for lang in replies.LANGUAGES:
            out = replies.render(key, lang, **{f: "X" for f in fields})
            assert "{" not in out and out.strip(), (key, lang)
    # The calendar and share sentences the tests hear in English, composed as the handlers do.
    assert replies.render("calendar_list_one", "en", range=replies.render("range_week", "en"), items="Gym") == \
        "You have one thing on your calendar this week: Gym."
    assert replies.render("share_done", "ur", name="Ali", item=replies.render("item_note", "ur", title="Wifi")) == \
        "ہو گیا، اب Ali آپ کا نوٹ “Wifi” دیکھ سکتا ہے۔"
