"""Voice notes end to end through the real Whisper and MiniLM servers: transcription, the
signed audio URL, hybrid search, failure and retry, deletion of the audio."""

from __future__ import annotations

import httpx
from eindr_notes import domain


def _upload(client, api, headers, audio: bytes, **data) -> dict:
    r = client.post(api.url + "/v1/notes", files={"audio": ("note.wav", audio, "audio/wav")}, data=data, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_spoken_note_is_transcribed_found_by_paraphrase_and_deleted_with_its_audio(
    client, notes_api, notes_worker, user, speech, poll, audio_dir
):
    uid, h = user
    audio = speech("The wifi password is on the fridge.")
    note = _upload(client, notes_api, h, audio, tags="home", language="en")
    assert note["status"] == "pending" and note["audio"]["format"] == "wav" and note["audio"]["bytes"] == len(audio)
    url = f"{notes_api.url}/v1/notes/{note['id']}"
    done = poll(lambda: client.get(url, headers=h).json(), lambda n: n["status"] != "pending" and n["indexed"])
    assert done["status"] == "transcribed", done
    words = done["transcript"].lower()
    assert ("wi-fi" in words or "wifi" in words) and "password" in words and "fridge" in words, words
    assert done["language"] == "en" and done["audio"]["duration_s"] > 1

    # Unrelated notes of the same user, so the ranking means something.
    for text in ("Buy oat milk and eggs on Saturday", "Dentist appointment moved to next Tuesday",
                 "Car insurance renews in March", "Ali owes me twenty dollars for the concert"):
        r = client.post(notes_api.url + "/v1/notes", json={"text": text}, headers=h)
        poll(lambda r=r: client.get(f"{notes_api.url}/v1/notes/{r.json()['id']}", headers=h).json(), lambda n: n["indexed"])

    found = client.get(notes_api.url + "/v1/notes/search", params={"q": "where did I put the wifi password"}, headers=h).json()
    assert found["mode"] == "hybrid" and found["items"], (found, done)
    assert found["items"][0]["note"]["id"] == note["id"], found
    assert found["items"][0]["semantic_rank"] == 1, found

    # The signed URL serves the exact audio, without a token; a tampered one does not.
    audio_url = done["audio"]["url"]
    assert audio_url.startswith(f"/v1/notes/{note['id']}/audio?")
    r = httpx.get(notes_api.url + audio_url)
    assert r.status_code == 200 and r.content == audio and r.headers["content-type"] == "audio/wav"
    assert httpx.get(notes_api.url + audio_url.replace("signature=", "signature=0")).status_code == 404
    expired = audio_url.replace("expires=", "expires=1")  # a different expiry breaks the signature
    assert httpx.get(notes_api.url + expired).status_code == 404

    files = list((audio_dir / domain.storage_prefix(uid).rstrip("/")).glob("*"))
    assert [f.name for f in files] == [f"{note['id']}.wav"]
    assert client.delete(url, headers=h).status_code == 204
    assert not files[0].exists()
    assert httpx.get(notes_api.url + audio_url).status_code == 404


def test_meaning_alone_finds_a_note_sharing_no_word_with_the_query(client, notes_api, notes_worker, user, poll):
    _uid, h = user
    ids = []
    for text in ("The wifi password is on the fridge", "Buy oat milk and eggs on Saturday",
                 "Dentist appointment moved to next Tuesday", "Car insurance renews in March"):
        ids.append(client.post(notes_api.url + "/v1/notes", json={"text": text}, headers=h).json()["id"])
        poll(lambda: client.get(f"{notes_api.url}/v1/notes/{ids[-1]}", headers=h).json(), lambda n: n["indexed"])
    found = client.get(notes_api.url + "/v1/notes/search", params={"q": "internet login code location"}, headers=h).json()
    assert found["items"] and found["items"][0]["note"]["id"] == ids[0], found
    assert found["items"][0]["fulltext_rank"] is None and found["items"][0]["semantic_rank"] == 1
    # Unrelated notes fall under the similarity floor: not every note comes back.
    assert len(found["items"]) < 4


def test_exact_words_rank_by_full_text(client, notes_api, notes_worker, user, poll):
    _uid, h = user
    ids = {}
    for key, text in {
        "code": "The locker combination is zq7731",
        "garden": "Water the tomatoes in the garden every evening",
        "mum": "Call mum about the birthday party",
    }.items():
        r = client.post(notes_api.url + "/v1/notes", json={"text": text}, headers=h)
        ids[key] = r.json()["id"]
        poll(lambda key=key: client.get(f"{notes_api.url}/v1/notes/{ids[key]}", headers=h).json(), lambda n: n["indexed"])
    hit = client.get(notes_api.url + "/v1/notes/search", params={"q": "zq7731"}, headers=h).json()["items"][0]
    assert hit["note"]["id"] == ids["code"] and hit["fulltext_rank"] == 1
    hits = client.get(notes_api.url + "/v1/notes/search", params={"q": "tomatoes"}, headers=h).json()["items"]
    assert hits[0]["note"]["id"] == ids["garden"] and hits[0]["fulltext_rank"] == 1 and hits[0]["semantic_rank"] == 1
    # Stemming: "parties" finds "party".
    hits = client.get(notes_api.url + "/v1/notes/search", params={"q": "parties"}, headers=h).json()["items"]
    assert hits[0]["note"]["id"] == ids["mum"]


def test_edit_reembeds_the_new_text(client, notes_api, notes_worker, user, poll):
    _uid, h = user
    r = client.post(notes_api.url + "/v1/notes", json={"text": "Passport is in the top drawer"}, headers=h)
    nid = r.json()["id"]
    poll(lambda: client.get(f"{notes_api.url}/v1/notes/{nid}", headers=h).json(), lambda n: n["indexed"])
    client.patch(f"{notes_api.url}/v1/notes/{nid}", json={"text": "The bicycle is chained behind the station"}, headers=h)

    def top_for(q: str):
        items = client.get(notes_api.url + "/v1/notes/search", params={"q": q}, headers=h).json()["items"]
        return items[0] if items else None

    poll(lambda: {"hit": top_for("where is my bike")}, lambda s: s["hit"] is not None and s["hit"]["semantic_rank"] == 1)
    old = top_for("travel document location")
    assert old is None or old["similarity"] < 0.5


def test_stt_down_fails_after_retries_then_retry_transcribes(client, notes_api, notes_worker, broken_stack, user, speech, poll, db):
    broken_api, _ = broken_stack
    _uid, h = user
    note = _upload(client, broken_api, h, speech("Remember to renew the parking permit"))
    url = f"/v1/notes/{note['id']}"
    failed = poll(lambda: client.get(broken_api.url + url, headers=h).json(), lambda n: n["status"] != "pending")
    assert failed["status"] == "failed"
    assert "unreachable" in failed["failure_reason"] and "3 attempts" in failed["failure_reason"]
    assert db.execute("SELECT attempts FROM notes.notes WHERE id = %s", (note["id"],)).fetchone()[0] == 3
    # Search still answers (full text only) while the embedding server is down.
    r = client.get(broken_api.url + "/v1/notes/search", params={"q": "parking"}, headers=h)
    assert r.status_code == 200 and r.json()["mode"] == "fulltext"
    # Retry where the STT server is up: the same note becomes transcribed.
    r = client.post(notes_api.url + url + "/retry", headers=h)
    assert r.status_code == 202 and r.json()["status"] == "pending" and r.json()["failure_reason"] is None
    done = poll(lambda: client.get(notes_api.url + url, headers=h).json(), lambda n: n["status"] != "pending")
    assert done["status"] == "transcribed" and "parking" in done["transcript"].lower()
    r = client.post(notes_api.url + url + "/retry", headers=h)
    assert r.status_code == 409 and r.json()["code"] == "note_not_failed"


def test_corrupt_audio_fails_at_once_with_the_reason(client, notes_api, notes_worker, user, poll):
    _uid, h = user
    corrupt = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(range(256)) * 20
    note = _upload(client, notes_api, h, corrupt)
    url = f"{notes_api.url}/v1/notes/{note['id']}"
    failed = poll(lambda: client.get(url, headers=h).json(), lambda n: n["status"] != "pending")
    assert failed["status"] == "failed" and "refused" in failed["failure_reason"], failed
    r = client.post(url + "/retry", headers=h)
    assert r.status_code == 202
    again = poll(lambda: client.get(url, headers=h).json(), lambda n: n["status"] != "pending")
    assert again["status"] == "failed"


def test_lost_job_is_requeued_by_the_sweep(client, notes_api, notes_worker, user, poll, db, rds):
    """A note whose job never reached the queue (Redis down at upload) is found by the sweep."""
    _uid, h = user
    r = client.post(notes_api.url + "/v1/notes", json={"text": "Sweep me: the ladder is in the shed"}, headers=h)
    nid = r.json()["id"]
    poll(lambda: client.get(f"{notes_api.url}/v1/notes/{nid}", headers=h).json(), lambda n: n["indexed"])
    # Simulate the lost job: no embedding, last touched long ago.
    db.execute("UPDATE notes.notes SET embedding = NULL, updated_at = now() - interval '1 hour' WHERE id = %s", (nid,))
    assert client.get(f"{notes_api.url}/v1/notes/{nid}", headers=h).json()["indexed"] is False
    poll(lambda: client.get(f"{notes_api.url}/v1/notes/{nid}", headers=h).json(), lambda n: n["indexed"])
