"""``python -m eindr_gateway.devtoken alice [--admin] [--hours 1]``: print an ID token in
the Firebase Auth Emulator's format (unsigned), which the gateway accepts only when
``FIREBASE_AUTH_EMULATOR_HOST`` is set and never in production."""

from __future__ import annotations

import argparse
import base64
import json
import time


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")


def emulator_token(uid: str, project_id: str = "eindr-local", *, admin: bool = False, ttl_s: int = 3600,
                   email: str | None = None, now: int | None = None, **claims) -> str:
    now = int(now if now is not None else time.time())
    payload = {
        "iss": f"https://securetoken.google.com/{project_id}",
        "aud": project_id,
        "auth_time": now,
        "user_id": uid,
        "sub": uid,
        "iat": now,
        "exp": now + ttl_s,
        "email": email or f"{uid}@example.com",
        "email_verified": True,
        "firebase": {"identities": {"email": [email or f"{uid}@example.com"]}, "sign_in_provider": "password"},
        **({"admin": True} if admin else {}),
        **claims,
    }
    return f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(payload)}."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("uid")
    parser.add_argument("--project", default="eindr-local")
    parser.add_argument("--admin", action="store_true")
    parser.add_argument("--hours", type=float, default=1.0)
    args = parser.parse_args()
    print(emulator_token(args.uid, args.project, admin=args.admin, ttl_s=int(args.hours * 3600)))


if __name__ == "__main__":
    main()
