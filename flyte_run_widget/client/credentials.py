"""Who we are to a Flyte cluster: the SDK's credential settings, read the way the SDK reads them.

    key = decode_api_key(os.environ["FLYTE_API_KEY"])   # endpoint, org, client id and secret
    creds = credentials_from_file(admin_section, path)  # admin.authType, admin.clientId, ...

An API key is ``base64("host:client_id:client_secret:org")``, split on the first three colons
(as ``flyte.remote._client.auth._auth_utils.decode_api_key``); the host has no scheme and no port,
so the SDK reaches it as ``dns:///host`` over TLS, i.e. port 443. Secrets are kept out of every
repr: these objects end up in notebooks.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError

API_KEY_ENV = "FLYTE_API_KEY"
AUTH_TYPES = ("ClientSecret", "DeviceFlow", "Pkce", "ExternalCommand")


@dataclass(frozen=True)
class Credentials:
    """How to get a token: ``auth_type`` is one of AUTH_TYPES."""

    auth_type: str
    client_id: str = ""
    client_secret: str = field(default="", repr=False)
    scopes: tuple[str, ...] = ()
    command: tuple[str, ...] = field(default=(), repr=False)  # its arguments may hold secrets
    source: str = ""  # where these came from, for error messages ("FLYTE_API_KEY", a file)


@dataclass(frozen=True)
class ApiKey:
    endpoint: str
    client_id: str
    client_secret: str = field(repr=False)
    org: str  # "" when the key names none (the SDK's "None")

    def credentials(self, source: str) -> Credentials:
        return Credentials("ClientSecret", self.client_id, self.client_secret, source=source)


def decode_api_key(key: str, *, source: str = "the API key") -> ApiKey:
    """The parts of a Flyte API key; ConfigError (which never quotes the key) when it is not one."""
    how = (
        "a Flyte API key is base64 of 'host:client_id:client_secret:org', as `flyte create api-key` "
        "or `flyte-run-widget api-key create` prints it"
    )
    try:
        text = base64.b64decode(key.strip().encode("ascii"), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError) as e:
        raise ConfigError(f"{source} is not base64 of UTF-8 text; {how}") from e
    parts = text.split(":", 3)
    if len(parts) != 4:
        raise ConfigError(f"{source} decodes to {len(parts)} ':'-separated parts, not 4; {how}")
    host, client_id, secret, org = parts
    if not host.strip() or "/" in host or any(c.isspace() for c in host) or host in ("http", "https", "dns"):
        raise ConfigError(f"{source} names no usable host (a bare host name is expected); {how}")
    if not client_id or not secret:
        raise ConfigError(f"{source} has an empty client id or secret; {how}")
    return ApiKey(host, client_id, secret, "" if org in ("", "None") else org)


def looks_like_api_key(key: str) -> bool:
    try:
        decode_api_key(key)
    except ConfigError:
        return False
    return True


def credentials_from_file(admin: dict[str, Any], path: Path) -> Credentials | None:
    """The credentials a config file's ``admin`` section asks for, as ``PlatformConfig.auto``
    reads them: a client secret (from ``clientSecretLocation`` or the variable
    ``clientSecretEnvVar`` names) makes it ClientSecret whatever ``authType`` says. None when the
    file sets no ``authType`` and no secret (the service then gets no token from us)."""
    secret = ""
    location = admin.get("clientSecretLocation")
    if location:
        file = Path(str(location)).expanduser()
        try:
            secret = file.read_text().strip()
        except OSError as e:
            raise ConfigError(
                f"{path}: admin.clientSecretLocation names {file}, which cannot be read ({e.strerror});"
                " fix the path or its permissions"
            ) from e
    variable = admin.get("clientSecretEnvVar")
    if variable:
        secret = os.environ.get(str(variable), "") or secret
    # The SDK reads a key's variable before the file (ConfigEntry.read).
    auth_type = str(_env("FLYTE_AUTH_TYPE", "FLYTE_ADMIN_AUTHTYPE") or admin.get("authType") or "")
    if secret:
        auth_type = "ClientSecret"
    if not auth_type:
        return None
    match = {t.lower(): t for t in AUTH_TYPES}.get(auth_type.lower())
    if match is None:
        raise ConfigError(f"{path}: admin.authType {auth_type!r} is not one of {', '.join(AUTH_TYPES)}")
    client_id = str(admin.get("clientId") or "")
    command = _as_list(_env("FLYTE_AUTH_COMMAND", "FLYTE_ADMIN_COMMAND") or admin.get("command"), argv=True)
    if match == "ClientSecret" and not (client_id and secret):
        raise ConfigError(
            f"{path}: admin.authType ClientSecret needs admin.clientId and a secret"
            " (admin.clientSecretLocation, a file, or admin.clientSecretEnvVar, a variable's name)"
        )
    if match == "ExternalCommand" and not command:
        raise ConfigError(f"{path}: admin.authType ExternalCommand needs admin.command (the token's command)")
    return Credentials(
        match,
        client_id,
        secret,
        tuple(_as_list(admin.get("scopes"), argv=False)),
        tuple(command),
        source=str(path),
    )


def _env(*names: str) -> str:
    return next((os.environ[n] for n in names if os.environ.get(n)), "")


def _as_list(value: Any, *, argv: bool) -> list[str]:
    """A YAML list as it is; a string as the SDK takes it from a variable: a JSON array, else a
    shell command line (argv) or comma/space separated words."""
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    text = str(value).strip()
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            return [str(v) for v in parsed]
    if argv:
        return shlex.split(text)
    return [s for s in text.replace(",", " ").split() if s]
