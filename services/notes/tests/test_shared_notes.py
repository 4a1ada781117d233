"""Notes a friend shares (through the real friends service) are found by search and can
be read, not changed; revoking the share hides them again; strangers never see them."""

from __future__ import annotations

import httpx

from eindr_common.testing import auth_headers, new_uid


def test_shared_notes_are_searchable_and_read_only(client, notes_api, notes_worker, friends_svc, poll):
    alice, bob, carol = new_uid(), new_uid(), new_uid()

    def fh(uid):
        return auth_headers(uid, "friends")

    def nh(uid):
        return auth_headers(uid, "notes")

    r = client.post(friends_svc.url + "/v1/friends/invites", json={"user_id": bob}, headers=fh(alice))
    assert r.status_code == 201, r.text
    assert client.post(f"{friends_svc.url}/v1/friends/invites/{r.json()['id']}/accept", headers=fh(bob)).status_code == 200

    note = client.post(notes_api.url + "/v1/notes", json={"text": "The boat keys are in the blue tin in the shed"}, headers=nh(alice)).json()
    url = f"{notes_api.url}/v1/notes/{note['id']}"
    poll(lambda: client.get(url, headers=nh(alice)).json(), lambda n: n["indexed"])

    def bob_finds() -> list[str]:
        items = client.get(notes_api.url + "/v1/notes/search", params={"q": "where are the boat keys"}, headers=nh(bob)).json()["items"]
        return [i["note"]["id"] for i in items]

    assert bob_finds() == [] and client.get(url, headers=nh(bob)).status_code == 404

    share = client.post(friends_svc.url + "/v1/friends/shares",
                        json={"friend_id": bob, "item_type": "note", "item_id": note["id"]}, headers=fh(alice))
    assert share.status_code == 201, share.text
    assert bob_finds() == [note["id"]]
    hit = client.get(notes_api.url + "/v1/notes/search", params={"q": "boat keys"}, headers=nh(bob)).json()["items"][0]
    assert hit["note"]["shared_by"] == alice
    got = client.get(url, headers=nh(bob))
    assert got.status_code == 200 and got.json()["shared_by"] == alice and got.json()["text"].startswith("The boat keys")
    # Read-only: Bob cannot change or delete it; Alice's own view says it is hers.
    assert client.patch(url, json={"title": "mine"}, headers=nh(bob)).status_code == 404
    assert client.delete(url, headers=nh(bob)).status_code == 404
    assert client.get(url, headers=nh(alice)).json()["shared_by"] is None
    # Bob's list is his own notes only; a stranger sees nothing.
    assert client.get(notes_api.url + "/v1/notes", headers=nh(bob)).json()["items"] == []
    assert client.get(notes_api.url + "/v1/notes/search", params={"q": "boat keys"}, headers=nh(carol)).json()["items"] == []
    assert client.get(url, headers=nh(carol)).status_code == 404

    assert client.delete(f"{friends_svc.url}/v1/friends/shares/{share.json()['id']}", headers=fh(alice)).status_code == 204
    assert bob_finds() == [] and client.get(url, headers=nh(bob)).status_code == 404
    assert httpx.get(url).status_code == 401
