"""The notes API against the real processes: CRUD, pagination, bad input, authorization."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from eindr_notes import domain


def _text_note(client, api, headers, **body):
    r = client.post(api.url + "/v1/notes", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return r.json()


def _count(db, uid: str) -> int:
    return db.execute("SELECT count(*) FROM notes.notes WHERE user_id = %s", (uid,)).fetchone()[0]


def _files_of(audio_dir: Path, uid: str) -> list[Path]:
    d = audio_dir / domain.storage_prefix(uid).rstrip("/")
    return [p for p in d.rglob("*") if p.is_file()] if d.exists() else []


def test_text_note_lifecycle(client, notes_api, notes_worker, user, poll):
    _uid, h = user
    note = _text_note(client, notes_api, h, text="The spare key is under the blue pot", title="Key", tags=["Home", "home", " keys "])
    assert note["status"] == "ready" and note["audio"] is None
    assert note["tags"] == ["home", "keys"]
    url = f"{notes_api.url}/v1/notes/{note['id']}"
    assert client.get(url, headers=h).json()["text"] == "The spare key is under the blue pot"
    # The worker embeds it in the background.
    poll(lambda: client.get(url, headers=h).json(), lambda n: n["indexed"])

    r = client.patch(url, json={"title": "Spare key", "tags": ["house"]}, headers=h)
    assert r.status_code == 200 and r.json()["title"] == "Spare key" and r.json()["tags"] == ["house"]
    assert r.json()["text"] == "The spare key is under the blue pot"  # not sent, not changed
    r = client.patch(url, json={"title": None, "text": None}, headers=h)
    assert r.status_code == 400 and r.json()["code"] == "empty_note"

    assert client.delete(url, headers=h).status_code == 204
    assert client.delete(url, headers=h).status_code == 204  # idempotent for the owner
    assert client.get(url, headers=h).status_code == 404
    assert client.patch(url, json={"title": "x"}, headers=h).status_code == 404


def test_list_paginates_and_filters(client, notes_api, user):
    _uid, h = user
    ids = [_text_note(client, notes_api, h, text=f"note {i}", tags=["even" if i % 2 == 0 else "odd"])["id"] for i in range(7)]
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = client.get(notes_api.url + "/v1/notes", params=params, headers=h).json()
        seen += [n["id"] for n in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))  # newest first, each once
    evens = client.get(notes_api.url + "/v1/notes", params={"tag": "EVEN"}, headers=h).json()["items"]
    assert len(evens) == 4 and all(n["tags"] == ["even"] for n in evens)
    future = client.get(notes_api.url + "/v1/notes", params={"from": "2999-01-01T00:00:00+00:00"}, headers=h).json()
    assert future["items"] == []
    past = client.get(notes_api.url + "/v1/notes", params={"to": "2999-01-01T00:00:00Z", "status": "ready"}, headers=h).json()
    assert len(past["items"]) == 7
    r = client.get(notes_api.url + "/v1/notes", params={"from": "2020-01-01T00:00:00"}, headers=h)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "from"
    r = client.get(notes_api.url + "/v1/notes", params={"cursor": "garbage!!"}, headers=h)
    assert r.status_code == 400 and r.json()["code"] == "invalid_cursor"


def test_idempotency_key_replays_the_same_note(client, notes_api, user, db):
    uid, h = user
    hk = {**h, "Idempotency-Key": "create-1"}
    first = client.post(notes_api.url + "/v1/notes", json={"text": "once"}, headers=hk)
    again = client.post(notes_api.url + "/v1/notes", json={"text": "once"}, headers=hk)
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    assert _count(db, uid) == 1
    other = client.post(notes_api.url + "/v1/notes", json={"text": "twice"}, headers=hk)
    assert other.status_code == 409


@pytest.mark.parametrize(
    "body, field",
    [
        ({"text": "a\x00b"}, "text"),
        ({"text": "ok", "title": "\x00"}, "title"),
        ({"text": "x" * 1_000_000}, "text"),
        ({"text": "ok", "title": "t" * 201}, "title"),
        ({"text": "ok", "tags": ["a,b"]}, "tags[0]"),
        ({"text": "ok", "tags": ["t"] * 21}, "tags"),
        ({"text": "ok", "language": "english"}, "language"),
        ({"text": "ok", "colour": "red"}, "colour"),
        ({}, "audio"),
        ({"text": "   "}, "audio"),
    ],
)
def test_bad_json_bodies_are_400_naming_the_field_and_store_nothing(client, notes_api, user, db, body, field):
    uid, h = user
    r = client.post(notes_api.url + "/v1/notes", json=body, headers=h)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in r.json()["errors"]}
    assert len(r.text) < 5000  # the offending input is never echoed back
    assert _count(db, uid) == 0


def test_bad_uploads_store_nothing(client, notes_api, user, db, audio_dir, speech):
    uid, h = user
    url = notes_api.url + "/v1/notes"
    cases = [
        ({"audio": ("x.wav", b"", "audio/wav")}, {}, 400, "empty_audio"),
        ({"audio": ("x.wav", b"%PDF-1.7 this is not audio at all", "audio/wav")}, {}, 400, "unsupported_audio_format"),
        ({"audio": ("x.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image/png")}, {}, 400, "unsupported_audio_format"),
        ({"audio": ("x.wav", speech("hello"), "audio/wav")}, {"title": "bad\x00title"}, 400, "validation_error"),
        ({"audio": ("x.wav", speech("hello"), "audio/wav")}, {"tags": "ok,,\x00"}, 400, "validation_error"),
        ({"audio": ("x.wav", speech("hello"), "audio/wav")}, {"mood": "happy"}, 400, "validation_error"),
    ]
    for files, data, status, code in cases:
        r = client.post(url, files=files, data=data, headers=h)
        assert r.status_code == status and r.json()["code"] == code, (code, r.text)
    # Over 25 MB (a valid WAV header, then padding): 413, nothing read into storage.
    big = speech("hello")[:44] + b"\x00" * (25 * 1024 * 1024 + 10)
    r = client.post(url, files={"audio": ("big.wav", big, "audio/wav")}, headers=h)
    assert r.status_code == 413 and r.json()["code"] == "audio_too_large"
    r = client.post(url, content=b"text=hi", headers={**h, "content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 415
    r = client.post(url, content=b"{not json", headers={**h, "content-type": "application/json"})
    assert r.status_code == 400
    assert _count(db, uid) == 0
    assert _files_of(audio_dir, uid) == []


def test_search_input_rules(client, notes_api, user):
    _uid, h = user
    for q in ("", "   ", "x" * 501, "wifi\x00"):
        r = client.get(notes_api.url + "/v1/notes/search", params={"q": q}, headers=h)
        assert r.status_code == 400 and r.json()["errors"][0]["field"] == "q", q
    r = client.get(notes_api.url + "/v1/notes/search", headers=h)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "q"
    r = client.get(notes_api.url + "/v1/notes/search", params={"q": "ok", "limit": 51}, headers=h)
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "limit"


def test_output_neutralises_html_and_markdown(client, notes_api, user):
    _uid, h = user
    title = "<script>alert('pwned')</script>"
    text = "see [my bank](javascript:alert(document.cookie)) and ![x](http://evil/x.png) <img src=x onerror=alert(1)>"
    note = _text_note(client, notes_api, h, title=title, text=text, tags=["<b>bold</b>"])
    fetched = client.get(f"{notes_api.url}/v1/notes/{note['id']}", headers=h).json()
    for n in (note, fetched):
        for value in (n["title"], n["text"], n["tags"][0]):
            assert "<" not in value and ">" not in value and "[" not in value and "](" not in value
        assert domain.unneutralise(n["title"]) == title and domain.unneutralise(n["text"]) == text
    assert fetched["title"] == "&lt;script&gt;alert(&#x27;pwned&#x27;)&lt;/script&gt;"


def test_another_users_notes_are_invisible(client, notes_api, notes_worker, user, other_user, poll):
    (_a, ha), (_b, hb) = user, other_user
    note = _text_note(client, notes_api, ha, text="Alice's secret: the safe code is 4711", tags=["secret"])
    url = f"{notes_api.url}/v1/notes/{note['id']}"
    poll(lambda: client.get(url, headers=ha).json(), lambda n: n["indexed"])
    assert client.get(url, headers=hb).status_code == 404
    assert client.patch(url, json={"title": "mine now"}, headers=hb).status_code == 404
    assert client.delete(url, headers=hb).status_code == 404
    assert client.post(url + "/retry", headers=hb).status_code == 404
    assert client.get(notes_api.url + "/v1/notes", headers=hb).json()["items"] == []
    assert client.get(notes_api.url + "/v1/notes", params={"tag": "secret"}, headers=hb).json()["items"] == []
    for q in ("safe code", "4711", "Alice's secret: the safe code is 4711"):
        assert client.get(notes_api.url + "/v1/notes/search", params={"q": q}, headers=hb).json()["items"] == []
        assert client.get(notes_api.url + "/v1/notes/search", params={"q": q}, headers=ha).json()["items"][0]["note"]["id"] == note["id"]
    # Still Alice's, unchanged; deleting it for her still works; a random id is a 404.
    assert client.get(url, headers=ha).json()["text"].startswith("Alice&#x27;s secret")
    assert client.delete(url, headers=ha).status_code == 204
    assert client.delete(url, headers=hb).status_code == 404  # a tombstone is the owner's only
    assert client.get(f"{notes_api.url}/v1/notes/{uuid.uuid4()}", headers=ha).status_code == 404
    assert client.get(f"{notes_api.url}/v1/notes/not-a-uuid", headers=ha).status_code == 400


def test_requests_without_the_internal_token_are_401(client, notes_api):
    from eindr_common.testing import auth_headers

    for method, path in (("GET", "/v1/notes"), ("POST", "/v1/notes"), ("GET", "/v1/notes/search?q=x"),
                         ("GET", f"/v1/notes/{uuid.uuid4()}"), ("DELETE", f"/v1/notes/{uuid.uuid4()}")):
        assert client.request(method, notes_api.url + path).status_code == 401
        r = client.request(method, notes_api.url + path, headers=auth_headers("u1", "history"))
        assert r.status_code == 401 and r.json()["code"] == "invalid_internal_token"


def test_events_are_published(client, notes_api, user, rds):
    uid, h = user
    note = _text_note(client, notes_api, h, text="event me")
    client.delete(f"{notes_api.url}/v1/notes/{note['id']}", headers=h)
    mine = [(f["type"], json.loads(f["payload"])) for _, f in rds.xrange("eindr:events:notes") if json.loads(f["payload"]).get("uid") == uid]
    assert [t for t, _ in mine] == ["note.created", "note.deleted"]
    assert all(p["note_id"] == note["id"] for _, p in mine)
    trail = [f for _, f in rds.xrange("eindr:audit") if f["service"] == "notes" and f["actor_uid"] == uid]
    assert [(f["action"], f["resource_id"]) for f in trail] == [("note.created", note["id"]), ("note.deleted", note["id"])]
    assert all("event me" not in f["details"] for f in trail)
