"""A local endpoint that speaks the FCM HTTP v1 wire format (and the Google OAuth2 token
endpoint a service account uses), for testing the real sender: FCM cannot be reached here.

* ``POST /token``: the JWT-bearer grant; the assertion's RS256 signature is checked with the
  service account's public key; answers an access token.
* ``POST /v1/projects/{project}/messages:send``: requires that access token; a registration
  token starting with ``bad-`` gets FCM's 404 UNREGISTERED error body, others 200 with the
  message name.
"""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import jwt


class FakeFcm:
    def __init__(self, public_key_pem: bytes, project_id: str) -> None:
        self.public_key = public_key_pem
        self.project_id = project_id
        self.access_token = "ya29.fake-" + uuid.uuid4().hex
        self.messages: list[dict] = []
        self.token_requests = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet
                pass

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=UTF-8")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path == "/token":
                    form = parse_qs(raw.decode())
                    try:
                        assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
                        claims = jwt.decode(
                            form["assertion"][0],
                            fake.public_key,
                            algorithms=["RS256"],
                            audience="https://oauth2.googleapis.com/token",
                        )  # what google-auth signs
                        assert "firebase.messaging" in claims["scope"]
                    except Exception as exc:  # the test wants to see a 400, not a crash  # noqa: BLE001
                        return self._json(400, {"error": "invalid_grant", "error_description": str(exc)})
                    fake.token_requests += 1
                    return self._json(
                        200, {"access_token": fake.access_token, "expires_in": 3600, "token_type": "Bearer"}
                    )
                if self.path != f"/v1/projects/{fake.project_id}/messages:send":
                    return self._json(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})
                if self.headers.get("authorization") != f"Bearer {fake.access_token}":
                    return self._json(
                        401,
                        {
                            "error": {
                                "code": 401,
                                "message": "Request had invalid authentication credentials.",
                                "status": "UNAUTHENTICATED",
                            }
                        },
                    )
                message = json.loads(raw)["message"]
                fake.messages.append(message)
                if message.get("token", "").startswith("bad-"):
                    return self._json(
                        404,
                        {
                            "error": {
                                "code": 404,
                                "message": "Requested entity was not found.",
                                "status": "NOT_FOUND",
                                "details": [
                                    {
                                        "@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError",
                                        "errorCode": "UNREGISTERED",
                                    }
                                ],
                            }
                        },
                    )
                return self._json(200, {"name": f"projects/{fake.project_id}/messages/{uuid.uuid4().int >> 64}"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
