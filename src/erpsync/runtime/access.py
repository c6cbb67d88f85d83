"""Who may use the dashboard and the API: users with argon2id password hashes, server-side login sessions (the
cookie carries a random token, the store only its SHA-256, so a copy of the store opens no session) and failed
logins, counted in the store so every web process enforces the same rate limit.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from erpsync import logs
from erpsync.runtime.store import Store, utcnow, web_login_failures, web_sessions, web_users

log = logs.get(__name__)

USERNAME = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
MIN_PASSWORD = 10
_hasher = PasswordHasher()
# verified when a user name is unknown, so a wrong name costs as long as a wrong password
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


class AccessError(ValueError):
    """A user cannot be added or changed as asked; the message says why and what to do."""


@dataclass(frozen=True)
class Session:
    username: str
    csrf_token: str
    expires_at: datetime


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Access:
    def __init__(self, store: Store):
        self.store = store

    # users -----------------------------------------------------------------------------------------------------

    def add_user(self, username: str, password: str, *, replace: bool = False) -> None:
        if not USERNAME.match(username):
            raise AccessError(f"user name {username!r}: use 1-64 letters, digits and . _ @ -")
        if len(password) < MIN_PASSWORD:
            raise AccessError(f"the password for {username} has {len(password)} characters; use at least "
                              f"{MIN_PASSWORD}")
        now = utcnow()
        values = {"password_hash": _hasher.hash(password), "updated_at": now}
        with self.store.engine.begin() as conn:
            exists = conn.execute(sa.select(web_users.c.username).where(web_users.c.username == username)).first()
            if exists and not replace:
                raise AccessError(f"user {username} exists; use --replace to set a new password")
            if exists:
                conn.execute(web_users.update().where(web_users.c.username == username).values(**values))
                conn.execute(web_sessions.delete().where(web_sessions.c.username == username))
            else:
                conn.execute(web_users.insert().values(username=username, created_at=now, **values))
        log.info("web.user_saved", user=username, replaced=bool(exists))

    def remove_user(self, username: str) -> bool:
        with self.store.engine.begin() as conn:
            conn.execute(web_sessions.delete().where(web_sessions.c.username == username))
            removed = conn.execute(web_users.delete().where(web_users.c.username == username)).rowcount
        return bool(removed)

    def users(self) -> list[tuple[str, datetime]]:
        with self.store.reader.connect() as conn:
            rows = conn.execute(sa.select(web_users.c.username, web_users.c.created_at).order_by(web_users.c.username))
            return [(row.username, row.created_at) for row in rows]

    def verify(self, username: str, password: str) -> bool:
        with self.store.reader.connect() as conn:
            row = conn.execute(sa.select(web_users.c.password_hash).where(web_users.c.username == username)).first()
        try:
            return _hasher.verify(row.password_hash if row else _DUMMY_HASH, password) and row is not None
        except (VerificationError, InvalidHashError):
            return False

    # sessions --------------------------------------------------------------------------------------------------

    def open_session(self, username: str, lifetime: timedelta) -> tuple[str, Session]:
        """A new session: returns the cookie token (shown once, never stored) and the session."""
        token = secrets.token_urlsafe(32)
        now = utcnow()
        session = Session(username, secrets.token_urlsafe(32), now + lifetime)
        with self.store.engine.begin() as conn:
            conn.execute(web_sessions.delete().where(web_sessions.c.expires_at < now))
            conn.execute(web_sessions.insert().values(token_hash=_digest(token), username=username,
                                                      csrf_token=session.csrf_token, created_at=now,
                                                      expires_at=session.expires_at))
        return token, session

    def session(self, token: str) -> Session | None:
        with self.store.reader.connect() as conn:
            row = conn.execute(sa.select(web_sessions).where(web_sessions.c.token_hash == _digest(token),
                                                            web_sessions.c.expires_at > utcnow())).first()
        return Session(row.username, row.csrf_token, row.expires_at) if row else None

    def close_session(self, token: str) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(web_sessions.delete().where(web_sessions.c.token_hash == _digest(token)))

    # failed logins ---------------------------------------------------------------------------------------------

    def failures(self, username: str, client: str, window: timedelta) -> int:
        """Failed logins within ``window`` for this user name or from this client, whichever is more."""
        since = utcnow() - window
        t = web_login_failures
        with self.store.reader.connect() as conn:
            by_user = conn.execute(sa.select(sa.func.count()).select_from(t)
                                   .where(t.c.username == username, t.c.at > since)).scalar_one()
            by_client = conn.execute(sa.select(sa.func.count()).select_from(t)
                                     .where(t.c.client == client, t.c.at > since)).scalar_one()
        return max(by_user, by_client)

    def record_failure(self, username: str, client: str, window: timedelta) -> None:
        now = utcnow()
        with self.store.engine.begin() as conn:
            conn.execute(web_login_failures.delete().where(web_login_failures.c.at < now - window))
            conn.execute(web_login_failures.insert().values(username=username[:64], client=client[:64], at=now))

    def forget_failures(self, username: str) -> None:
        with self.store.engine.begin() as conn:
            conn.execute(web_login_failures.delete().where(web_login_failures.c.username == username))
