"""``user.deleted`` from the real users service erases the user's notes and audio files."""

from __future__ import annotations

import pytest
from eindr_common.testing import auth_headers, new_uid
from eindr_notes import domain


@pytest.fixture(scope="session")
def users_svc(start_service):
    return start_service("users", "eindr_users.app:create_app")


def test_account_deletion_erases_rows_and_audio(client, users_svc, notes_api, notes_worker, speech, poll, db, audio_dir):
    uid, keep = new_uid(), new_uid()
    h, hk = auth_headers(uid, "notes"), auth_headers(keep, "notes")
    uh = auth_headers(uid, "users")
    assert client.post(users_svc.url + "/internal/users/provision", headers=uh).status_code == 201
    for i in range(2):
        r = client.post(notes_api.url + "/v1/notes", files={"audio": ("a.wav", speech(f"note number {i}"), "audio/wav")}, headers=h)
        assert r.status_code == 201
    client.post(notes_api.url + "/v1/notes", json={"text": "text only"}, headers=h)
    kept = client.post(notes_api.url + "/v1/notes", json={"text": "someone else's"}, headers=hk).json()
    deleted = client.post(notes_api.url + "/v1/notes", json={"text": "deleted earlier"}, headers=h).json()
    client.delete(f"{notes_api.url}/v1/notes/{deleted['id']}", headers=h)
    user_dir = audio_dir / domain.storage_prefix(uid).rstrip("/")
    assert len(list(user_dir.glob("*"))) == 2

    assert client.delete(users_svc.url + "/v1/users/me", headers=uh).status_code == 204

    def state():
        return {
            "rows": db.execute("SELECT count(*) FROM notes.notes WHERE user_id = %s", (uid,)).fetchone()[0],
            "tombstones": db.execute("SELECT count(*) FROM notes.tombstones WHERE user_id = %s", (uid,)).fetchone()[0],
            "files": user_dir.exists() and len(list(user_dir.glob("*"))),
        }

    poll(state, lambda s: s == {"rows": 0, "tombstones": 0, "files": False})
    assert client.get(notes_api.url + "/v1/notes", headers=h).json()["items"] == []
    assert client.get(f"{notes_api.url}/v1/notes/{kept['id']}", headers=hk).status_code == 200
