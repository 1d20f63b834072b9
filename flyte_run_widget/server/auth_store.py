"""Who may sign in, in SQLite beside the runs (``DATA/auth.db``, mode 600): API keys (only a
scrypt hash of each secret), pending device logins, and the access tokens given out (only their
SHA-256). The service and the ``api-key`` / ``auth approve`` commands open the same file, so a
key deleted from the command line stops working at the service's next call, its tokens with it.

    store = AuthStore(data_dir / "auth.db")
    key = store.create_key("ci", host="myhost")          # printed once, never stored
    token = store.issue_for_key("ci", secret, ttl=3600)  # None: no such key or a wrong secret
    store.check_token(token)                              # TokenState.VALID

Tokens are opaque (random, 256 bits) rather than signed: deleting a key must revoke its tokens at
once, so every call looks the token up in this store anyway, and a signing key would be one more
secret to keep without saving that look-up.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
import re
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import ServeError

AUTH_DB = "auth.db"
TOKEN_PREFIX = "frw_"
#: RFC 8628 6.1: no vowels (no words), no look-alikes; 20**8 codes.
USER_CODE_ALPHABET = "BCDFGHJKLMNPQRSTVWXZ"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_HOST = re.compile(r"[A-Za-z0-9.\-\[\]]{1,253}")
# scrypt at n=2**14, r=8: ~16 MiB and tens of milliseconds per check, which bounds guessing even
# though the secrets themselves are 256 random bits.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}
_MAX_PENDING_DEVICES = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    salt BLOB NOT NULL,
    hash BLOB NOT NULL,
    host TEXT NOT NULL,
    org TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    code_hash BLOB NOT NULL UNIQUE,
    user_code TEXT NOT NULL UNIQUE,
    expires REAL NOT NULL,
    interval REAL NOT NULL,
    last_poll REAL NOT NULL,
    status TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    hash BLOB PRIMARY KEY,
    key_id INTEGER REFERENCES api_keys (id) ON DELETE CASCADE,
    device_id INTEGER REFERENCES devices (id) ON DELETE CASCADE,
    expires REAL NOT NULL
);
"""


class AuthStoreError(ServeError, ValueError):
    """An API key or user code that cannot be created, found or used as given."""


class TokenState(enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"
    UNKNOWN = "unknown"  # never issued here, revoked, or its key deleted


class DeviceState(enum.Enum):
    PENDING = "authorization_pending"
    SLOW_DOWN = "slow_down"
    EXPIRED = "expired_token"
    DENIED = "access_denied"
    UNKNOWN = "invalid_grant"
    APPROVED = "approved"


@dataclass(frozen=True)
class KeyInfo:
    name: str
    host: str
    org: str
    created: float


@dataclass(frozen=True)
class DeviceLogin:
    device_code: str
    user_code: str
    expires_in: int
    interval: int

    def __repr__(self) -> str:  # the device code is a bearer secret until it is used
        return f"DeviceLogin(user_code={self.user_code!r}, expires_in={self.expires_in})"


def encode_key(host: str, client_id: str, secret: str, org: str) -> str:
    """The Flyte API key format: ``base64("host:client_id:client_secret:org")``."""
    return base64.b64encode(f"{host}:{client_id}:{secret}:{org}".encode()).decode()


def _sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _scrypt(secret: str, salt: bytes) -> bytes:
    data = secret.encode("utf-8", "surrogatepass")
    return hashlib.scrypt(data, salt=salt, maxmem=64 * 1024 * 1024, **_SCRYPT)


def secret_matches(row: tuple[int, bytes, bytes] | None, secret: str) -> bool:
    """Whether ``secret`` is the secret of ``row`` (from ``AuthStore.key_row``); as slow for a
    key that does not exist, so timing tells no names."""
    if row is None:
        _scrypt(secret, b"\0" * 16)
        return False
    return hmac.compare_digest(_scrypt(secret, row[1]), row[2])


def normalize_user_code(text: str) -> str:
    """``bcdf-ghjk``, ``BCDFGHJK`` and ``BCDF GHJK`` are the same code (RFC 8628 6.1)."""
    return "".join(c for c in text.upper() if c.isalnum())


class AuthStore:
    """One connection, for one thread (the service's event loop, or one command)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        fresh = not path.exists()
        if fresh:  # private from its first byte: it holds hashes that outlive the process
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self._db = sqlite3.connect(path, isolation_level=None, timeout=10, check_same_thread=False)
        self._db.execute("PRAGMA foreign_keys = ON")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # -- API keys ---------------------------------------------------------------------------

    def create_key(self, name: str, host: str, org: str = "") -> str:
        """A new key named ``name``; the only time its secret exists outside the caller."""
        if not _NAME.fullmatch(name):
            raise AuthStoreError(
                f"{name!r} cannot name an API key: use 1 to 64 letters, digits, '.', '_' or '-'"
            )
        if not _HOST.fullmatch(host):
            raise AuthStoreError(
                f"{host!r} is not a host name or address; an API key holds the host clients reach"
                " the service at, without scheme or port (the flyte SDK connects to port 443)"
            )
        if ":" in org:
            raise AuthStoreError("an API key's org cannot hold ':'")
        secret = secrets.token_urlsafe(32)
        salt = os.urandom(16)
        try:
            self._db.execute(
                "INSERT INTO api_keys (name, salt, hash, host, org, created) VALUES (?, ?, ?, ?, ?, ?)",
                (name, salt, _scrypt(secret, salt), host, org, time.time()),
            )
        except sqlite3.IntegrityError:
            raise AuthStoreError(
                f"an API key named {name!r} exists already; delete it first or choose another name"
            ) from None
        return encode_key(host, name, secret, org)

    def list_keys(self) -> list[KeyInfo]:
        rows = self._db.execute("SELECT name, host, org, created FROM api_keys ORDER BY name")
        return [KeyInfo(*row) for row in rows]

    def delete_key(self, name: str) -> bool:
        """Deletes the key and, by cascade in the same statement, every token it was given."""
        return self._db.execute("DELETE FROM api_keys WHERE name = ?", (name,)).rowcount > 0

    def key_row(self, name: str) -> tuple[int, bytes, bytes] | None:
        """(id, salt, hash) of the key ``name``: its secret is checked with ``secret_matches``,
        off the event loop (scrypt takes tens of milliseconds)."""
        row = self._db.execute("SELECT id, salt, hash FROM api_keys WHERE name = ?", (name,)).fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def issue_for_key(self, name: str, secret: str, ttl: float) -> str | None:
        """A token for the key ``name`` when ``secret`` is its secret, else None."""
        row = self.key_row(name)
        matches = secret_matches(row, secret)  # first: as slow when there is no such key
        if row is None or not matches:
            return None
        return self.issue_for_key_id(row[0], ttl)

    def issue_for_key_id(self, key_id: int, ttl: float) -> str | None:
        return self._issue("key_id", key_id, ttl)

    # -- tokens -----------------------------------------------------------------------------

    def _issue(self, column: str, owner: int, ttl: float) -> str | None:
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        try:
            self._db.execute(
                f"INSERT INTO tokens (hash, {column}, expires) VALUES (?, ?, ?)",
                (_sha256(token), owner, time.time() + ttl),
            )
        except sqlite3.IntegrityError:  # the key was deleted since its secret was checked
            return None
        return token

    def check_token(self, token: str, leeway: float = 0.0) -> TokenState:
        """Whether ``token`` may call now. ``leeway`` seconds past expiry are still accepted: a
        client whose clock runs behind refreshes a little late."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return TokenState.UNKNOWN
        row = self._db.execute("SELECT expires FROM tokens WHERE hash = ?", (_sha256(token),)).fetchone()
        if row is None:
            return TokenState.UNKNOWN
        return TokenState.VALID if time.time() <= row[0] + leeway else TokenState.EXPIRED

    def forget_expired(self, leeway: float) -> None:
        now = time.time()
        self._db.execute("DELETE FROM tokens WHERE expires < ?", (now - leeway - 86400,))
        self._db.execute("DELETE FROM devices WHERE expires < ? AND status != 'used'", (now - 86400,))

    # -- device logins (RFC 8628) -----------------------------------------------------------

    def start_device(self, expires_in: int, interval: int) -> DeviceLogin | None:
        """A new pending login, or None when too many are pending already (each is a row that
        anyone who reaches the port can make)."""
        now = time.time()
        (pending,) = self._db.execute(
            "SELECT COUNT(*) FROM devices WHERE status = 'pending' AND expires > ?", (now,)
        ).fetchone()
        if pending >= _MAX_PENDING_DEVICES:
            return None
        while True:
            device_code = secrets.token_urlsafe(32)
            raw = "".join(secrets.choice(USER_CODE_ALPHABET) for _ in range(8))
            try:
                self._db.execute(
                    "INSERT INTO devices (code_hash, user_code, expires, interval, last_poll, status)"
                    " VALUES (?, ?, ?, ?, 0, 'pending')",
                    (_sha256(device_code), raw, now + expires_in, interval),
                )
            except sqlite3.IntegrityError:  # the same user code is pending: draw again
                continue
            return DeviceLogin(device_code, f"{raw[:4]}-{raw[4:]}", expires_in, interval)

    def decide_device(self, user_code: str, approve: bool) -> None:
        """The owner's answer to a pending login; AuthStoreError naming why when there is none."""
        code = normalize_user_code(user_code)
        row = self._db.execute("SELECT status, expires FROM devices WHERE user_code = ?", (code,)).fetchone()
        if row is None:
            raise AuthStoreError(f"no device login has the code {user_code!r}; check it against the client's")
        status, expires = row
        if status != "pending":
            raise AuthStoreError(f"the device login {user_code!r} was already {status}")
        if time.time() > expires:
            raise AuthStoreError(f"the device login {user_code!r} expired; the client must start again")
        self._db.execute(
            "UPDATE devices SET status = ? WHERE user_code = ? AND status = 'pending'",
            ("approved" if approve else "denied", code),
        )

    def poll_device(self, device_code: str, ttl: float) -> tuple[DeviceState, str | None]:
        """RFC 8628 3.5: the token once approved (once only), else why not yet. A poll sooner
        than the interval gets slow_down and widens the interval by 5 s."""
        now = time.time()
        row = self._db.execute(
            "SELECT id, expires, interval, last_poll, status FROM devices WHERE code_hash = ?",
            (_sha256(device_code),),
        ).fetchone()
        if row is None:
            return DeviceState.UNKNOWN, None
        device_id, expires, interval, last_poll, status = row
        if status == "denied":
            return DeviceState.DENIED, None
        if status == "used":
            return DeviceState.UNKNOWN, None
        if now > expires:
            return DeviceState.EXPIRED, None
        # A client waits ``interval`` after each answer; allow for that answer's own time.
        if now - last_poll < interval * 0.8:
            self._db.execute(
                "UPDATE devices SET interval = interval + 5, last_poll = ? WHERE id = ?", (now, device_id)
            )
            return DeviceState.SLOW_DOWN, None
        self._db.execute("UPDATE devices SET last_poll = ? WHERE id = ?", (now, device_id))
        if status != "approved":
            return DeviceState.PENDING, None
        used = self._db.execute(
            "UPDATE devices SET status = 'used' WHERE id = ? AND status = 'approved'", (device_id,)
        ).rowcount
        if not used:  # a concurrent poll took it
            return DeviceState.UNKNOWN, None
        return DeviceState.APPROVED, self._issue("device_id", device_id, ttl)

    def pending_devices(self) -> list[tuple[str, float]]:
        now = time.time()
        rows = self._db.execute(
            "SELECT user_code, expires FROM devices WHERE status = 'pending' AND expires > ? ORDER BY id",
            (now,),
        )
        return [(f"{code[:4]}-{code[4:]}", expires - now) for code, expires in rows]
