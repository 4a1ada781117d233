"""Key rotation of the secrets stored at rest (`python -m eindr_calendar.crypto rotate`)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cryptography.fernet import Fernet, InvalidToken
from eindr_common.localstack import python_env


def test_rotate_re_encrypts_secrets_with_the_first_key(make_user, caldav_connect, dav_user, db, fernet, encryption_key,
                                                       service_env, calendar_env):
    user = make_user()
    conn = caldav_connect(user, dav_user)
    new_key = Fernet.generate_key().decode()
    env = {**service_env, **calendar_env, "EINDR_CALENDAR_ENCRYPTION_KEYS": f"{new_key},{encryption_key}"}
    out = subprocess.run(check=False, args=[sys.executable, "-m", "eindr_calendar.crypto", "rotate", "--user", user.uid], env=python_env(env),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "re-encrypted 1 rows" in out.stdout
    secret = bytes(db.execute("SELECT secret_enc FROM calendar.connections WHERE id = %s", (conn["id"],)).fetchone()[0])
    assert Fernet(new_key.encode()).decrypt(secret).decode() == dav_user.password
    with pytest.raises(InvalidToken):
        fernet.decrypt(secret)
    bad = subprocess.run(check=False, args=[sys.executable, "-m", "eindr_calendar.crypto", "spin"], env=python_env(env), capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "usage" in bad.stderr
