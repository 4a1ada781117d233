"""share_with_friend end to end: the real friends, reminders and notes services, each user a
real account with a display name their friends know them by. Each test checks the share
the friends service stored (or that none was), not only what the assistant said."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from eindr_common.testing import auth_headers

TZ = "Europe/Amsterdam"


def tomorrow_at(hour: int, tz: str = TZ) -> datetime:
    zone = ZoneInfo(tz)
    day = datetime.now(zone).date() + timedelta(days=1)
    return datetime(day.year, day.month, day.day, hour, 0, tzinfo=zone)


def conversation() -> str:
    return "c-" + uuid.uuid4().hex[:10]


def test_share_a_reminder_with_the_friend_named_in_the_sentence(named_user, befriend, add_reminder, say, shares_of):
    sara, ali, alina = named_user("Sara Ahmed"), named_user("Ali Khan"), named_user("Alina Noor")
    befriend(sara, ali)
    befriend(sara, alina)
    rid = add_reminder(sara, "Dentist appointment", tomorrow_at(10))
    add_reminder(sara, "Call mum", tomorrow_at(17))

    body = say(sara, "share my dentist reminder with Ali").json()
    assert body["intent"]["name"] == "share_with_friend", body
    assert body["slots"]["friend"] == "Ali" and body["slots"]["item_type"] == "reminder" and body["slots"]["query"] == "dentist"
    [action] = body["actions"]
    assert action["type"] == "share.create" and action["status"] == "done", action
    assert action["data"].items() >= {"friend_id": ali, "item_type": "reminder", "item_id": rid, "access": "view"}.items()
    [share] = shares_of(ali)
    assert (share["owner_id"], share["item_type"], share["item_id"], share["access"]) == (sara, "reminder", rid, "view")
    assert share["id"] == action["id"] and action["resource"] == f"/v1/friends/shares/{share['id']}"
    assert shares_of(alina) == []  # "Ali" is Ali Khan, not a guess between him and Alina
    assert body["reply"]["text"] == "Done, Ali Khan can now see your reminder “Dentist appointment”."
    assert body["awaiting_confirmation"] is False


def test_share_a_note_with_edit_access_and_the_friend_can_read_it(named_user, make_user, befriend, add_note, say, client,
                                                                   notes_svc, shares_of):
    sara, omar, stranger = named_user("Sara Ahmed"), named_user("Omar Farooq"), make_user()
    befriend(sara, omar)
    nid = add_note(sara, "The wifi password is orange42", title="Wifi password")
    add_note(sara, "Buy tiles for the bathroom", title="Bathroom")

    body = say(sara, "share my note about the wifi password with Omar so he can edit it").json()
    assert body["intent"]["name"] == "share_with_friend", body
    [action] = body["actions"]
    assert action["status"] == "done", action
    assert action["data"]["item_type"] == "note" and action["data"]["item_id"] == nid and action["data"]["access"] == "edit"
    [share] = shares_of(omar)
    assert (share["owner_id"], share["item_id"], share["access"]) == (sara, nid, "edit")
    assert body["reply"]["text"] == "Done, Omar Farooq can now see and edit your note “Wifi password”."

    # The share is real: the notes service now shows the note to Omar, and to nobody else.
    r = client.get(f"{notes_svc.url}/v1/notes/{nid}", headers=auth_headers(omar, "notes"))
    assert r.status_code == 200 and r.json()["shared_by"] == sara and "orange42" in r.json()["text"]
    r = client.get(f"{notes_svc.url}/v1/notes/{nid}", headers=auth_headers(stranger, "notes"))
    assert r.status_code == 404


def test_two_friends_with_that_name_get_a_question_and_the_answer_shares(named_user, befriend, add_reminder, say, shares_of):
    sara, khan, raza = named_user("Sara Ahmed"), named_user("Ali Khan"), named_user("Ali Raza")
    befriend(sara, khan)
    befriend(sara, raza)
    rid = add_reminder(sara, "Dentist appointment", tomorrow_at(10))
    conv = conversation()

    ask = say(sara, "share my dentist reminder with Ali", conversation_id=conv).json()
    [action] = ask["actions"]
    assert action["status"] == "needs_clarification" and sorted(action["data"]["candidates"]) == ["Ali Khan", "Ali Raza"]
    assert ask["awaiting_confirmation"] is True
    assert ask["reply"]["text"].startswith("Which Ali do you mean: ") and "Ali Khan" in ask["reply"]["text"] and "Ali Raza" in ask["reply"]["text"]
    assert shares_of(khan) == [] and shares_of(raza) == []  # nothing until the user says who

    answer = say(sara, "Ali Raza", conversation_id=conv).json()
    assert answer["intent"]["name"] == "share_with_friend", answer
    assert answer["actions"][0]["status"] == "done"
    [share] = shares_of(raza)
    assert share["item_id"] == rid and share["owner_id"] == sara
    assert shares_of(khan) == []
    # The question is answered: saying the name again is a new (unclear) command, not a second share.
    again = say(sara, "Ali Raza", conversation_id=conv).json()
    assert not [a for a in again["actions"] if a["type"] == "share.create" and a["status"] == "done"]
    assert len(shares_of(raza)) == 1


def test_unknown_friend_or_no_friends_is_said_and_nothing_is_shared(named_user, make_user, befriend, add_reminder, say, shares_of):
    loner = make_user()
    add_reminder(loner, "Dentist appointment", tomorrow_at(10))
    body = say(loner, "share my dentist reminder with Ali").json()
    assert body["intent"]["name"] == "share_with_friend", body
    assert body["actions"][0]["status"] == "no_friends"
    assert body["reply"]["text"].startswith("You don't have any friends on Eindr yet.")

    sara, ali = named_user("Sara Ahmed"), named_user("Ali Khan")
    befriend(sara, ali)
    add_reminder(sara, "Dentist appointment", tomorrow_at(10))
    body = say(sara, "share my dentist reminder with Bob").json()
    assert body["actions"][0]["status"] == "friend_not_found"
    assert body["reply"]["text"] == "I couldn't find Bob among your friends. Who should I share it with?"
    assert body["awaiting_confirmation"] is True
    body = say(sara, "share my passport reminder with Ali").json()
    assert body["actions"][0]["status"] == "nothing_found"
    assert body["reply"]["text"] == "I couldn't find a reminder or note of yours about passport."
    assert shares_of(sara, "outgoing") == [] and shares_of(ali) == []


def test_no_friend_named_asks_who_and_the_next_turn_answers(named_user, befriend, add_reminder, say, shares_of):
    sara, ali, omar = named_user("Sara Ahmed"), named_user("Ali Khan"), named_user("Omar Farooq")
    befriend(sara, ali)
    befriend(sara, omar)
    rid = add_reminder(sara, "Dentist appointment", tomorrow_at(10))
    conv = conversation()
    ask = say(sara, "share my dentist reminder", conversation_id=conv).json()
    assert ask["intent"]["name"] == "share_with_friend", ask
    assert ask["actions"][0]["status"] == "needs_friend" and ask["reply"]["text"] == "Who should I share it with?"
    answer = say(sara, "with Omar", conversation_id=conv).json()
    assert answer["actions"][0]["status"] == "done", answer
    assert [s["item_id"] for s in shares_of(omar)] == [rid] and shares_of(ali) == []


def test_a_second_user_cannot_share_the_first_users_items(named_user, befriend, add_reminder, add_note, say, shares_of):
    sara, ali, carol = named_user("Sara Ahmed"), named_user("Ali Khan"), named_user("Carol White")
    befriend(sara, ali)
    befriend(ali, carol)
    add_reminder(sara, "Dentist appointment", tomorrow_at(10))
    nid = add_note(sara, "The wifi password is orange42", title="Wifi password")
    assert say(sara, "share my note about the wifi password with Ali").json()["actions"][0]["status"] == "done"

    # Sara's reminder is not Ali's to share: he has none about the dentist.
    body = say(ali, "share the dentist reminder with Carol").json()
    assert body["intent"]["name"] == "share_with_friend", body
    assert body["actions"][0]["status"] == "nothing_found"
    # Ali can read Sara's note (she shared it), but only its owner may share it on.
    body = say(ali, "share the wifi password note with Carol").json()
    assert body["actions"][0]["status"] == "not_permitted" and body["actions"][0]["id"] == nid
    assert body["reply"]["text"] == "That note was shared with you by a friend; only its owner can share it."
    assert shares_of(carol) == []
    assert [(s["friend_id"], s["item_id"]) for s in shares_of(sara, "outgoing")] == [(ali, nid)]


def test_a_friendship_ended_before_the_answer_gets_an_honest_no(named_user, befriend, add_reminder, say, friends_as, shares_of):
    sara, khan, raza = named_user("Sara Ahmed"), named_user("Ali Khan"), named_user("Ali Raza")
    befriend(sara, khan)
    befriend(sara, raza)
    add_reminder(sara, "Dentist appointment", tomorrow_at(10))
    conv = conversation()
    assert say(sara, "share my dentist reminder with Ali", conversation_id=conv).json()["awaiting_confirmation"] is True

    # Ali Raza ends the friendship while Sara is being asked which Ali she meant.
    r = friends_as(raza, "DELETE", f"/v1/friends/{sara}")
    assert r.status_code == 204, r.text
    body = say(sara, "Ali Raza", conversation_id=conv).json()
    assert body["actions"][0]["status"] == "not_permitted", body
    assert body["reply"]["text"] == "You and Ali Raza aren't friends on Eindr any more, so I can't share with them."
    assert shares_of(raza) == [] and shares_of(sara, "outgoing") == []


def test_share_by_voice(named_user, befriend, add_reminder, speak, tts_voice, shares_of):
    maria, sarah = named_user("Maria Lopez"), named_user("Sarah Jones")
    befriend(maria, sarah)
    rid = add_reminder(maria, "Dentist appointment", tomorrow_at(10))
    # Piper's "share my" reaches Whisper as "Chair my"; "share the" is heard as said.
    body = speak(maria, tts_voice("share the dentist reminder with Sarah")).json()
    assert body["intent"]["name"] == "share_with_friend", body
    assert body["intent"]["accepted"] and body["actions"][0]["status"] == "done", \
        f"transcript={body['transcript']!r} intent={body['intent']} slots={body['slots']}"
    [share] = shares_of(sarah)
    assert share["item_id"] == rid and share["owner_id"] == maria
    assert body["reply"]["audio_url"]


def test_share_in_spanish(named_user, befriend, add_reminder, say, shares_of):
    lucia, ali = named_user("Lucía García", language="es-ES", timezone="Europe/Madrid"), named_user("Ali Khan")
    befriend(lucia, ali)
    rid = add_reminder(lucia, "Ir al dentista", tomorrow_at(10, "Europe/Madrid"), timezone="Europe/Madrid")
    body = say(lucia, "comparte mi recordatorio del dentista con Ali").json()
    assert body["intent"]["name"] == "share_with_friend", body
    assert body["actions"][0]["status"] == "done"
    [share] = shares_of(ali)
    assert share["item_id"] == rid
    assert body["reply"]["language"] == "es"
    assert body["reply"]["text"] == "Listo, Ali Khan ya puede ver tu recordatorio «Ir al dentista»."


def test_a_reminder_about_sharing_is_a_reminder(named_user, befriend, say, reminders_of, shares_of):
    sara, omar = named_user("Sara Ahmed"), named_user("Omar Farooq")
    befriend(sara, omar)
    body = say(sara, "remind me to share the slides with Omar tomorrow at 9").json()
    assert body["intent"]["name"] == "create_reminder", body
    assert [r["title"] for r in reminders_of(sara)] == ["Share the slides with Omar"]
    assert shares_of(omar) == []
