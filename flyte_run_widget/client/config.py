"""Where the Run service is and who we are to it.

import flyte_run_widget as frw
frw.init()                                    # config file, else the embedded service
frw.init("dns:///flyte.example.com", project="ml", domain="development")
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..common.data_dir import default_data_dir
from ..common.net import is_loopback_host
from ..errors import ConfigError
from .credentials import API_KEY_ENV as FLYTE_API_KEY_ENV
from .credentials import Credentials, credentials_from_file, decode_api_key, looks_like_api_key

API_KEY_ENV = "FLYTE_RUN_WIDGET_API_KEY"
DEFAULT_PROJECT = "flytesnacks"
DEFAULT_DOMAIN = "development"


@dataclass(frozen=True)
class Endpoint:
    """A parsed endpoint: ``target`` is what grpc dials, ``host`` what URLs and TLS use."""

    target: str
    host: str
    port: int
    scheme: str  # "http" or "https": only decides TLS when not said explicitly

    @property
    def is_loopback(self) -> bool:
        return is_loopback_host(self.host)


@dataclass(frozen=True)
class Config:
    endpoint: Endpoint
    insecure: bool
    org: str = ""
    project: str = DEFAULT_PROJECT
    domain: str = DEFAULT_DOMAIN
    api_key: str | None = field(default=None, repr=False)  # never shown: reprs end up in notebooks
    ca_cert: Path | None = None  # PEM roots to trust instead of the system's (a self-signed service)
    ca_pem: bytes | None = field(default=None, repr=False)  # the same, in memory (taken from the flyte SDK)
    embedded: bool = False
    data_dir: Path | None = None  # the embedded service's folder, when embedded
    source: str = "arguments"
    # OAuth2 credentials for the service's token endpoint (client/auth.py); the token they get
    # is sent instead of api_key.
    credentials: Credentials | None = field(default=None, repr=False)

    @property
    def console_url(self) -> str:
        scheme = "http" if self.insecure else "https"
        host = self.endpoint.host
        if ":" in host:  # an IPv6 address is bracketed in a URL
            host = f"[{host}]"
        if self.endpoint.port not in (80, 443):
            host = f"{host}:{self.endpoint.port}"
        return f"{scheme}://{host}"


def parse_endpoint(endpoint: str) -> Endpoint:
    """Accept the forms the Flyte SDK accepts: ``host:port``, ``dns:///host:port``,
    ``http://host:port`` and ``https://host``."""
    raw = endpoint.strip()
    if not raw:
        raise ConfigError("the endpoint is empty; pass e.g. init('localhost:8090')")
    scheme = ""
    rest = raw
    if "://" in raw:
        scheme, rest = raw.split("://", 1)
        scheme = scheme.lower()
        if scheme == "dns":
            rest = rest.lstrip("/")
            scheme = ""
        elif scheme not in ("http", "https", "grpc", "grpcs"):
            raise ConfigError(
                f"endpoint {endpoint!r} has scheme {scheme!r}; use host:port, dns:///host:port, "
                "http://host:port or https://host"
            )
    rest = rest.rstrip("/")
    if not rest or "/" in rest or " " in rest:
        raise ConfigError(
            f"endpoint {endpoint!r} is not a host and port; use e.g. 'localhost:8090' or "
            "'https://flyte.example.com'"
        )
    try:
        parts = urlsplit(f"//{rest}")
        host = parts.hostname or ""
        port = parts.port
    except ValueError as e:
        raise ConfigError(f"endpoint {endpoint!r} has a bad port ({e}); use host:port") from e
    if not host:
        raise ConfigError(f"endpoint {endpoint!r} names no host; use e.g. 'localhost:8090'")
    if scheme in ("https", "grpcs"):
        tls_scheme = "https"
    elif scheme in ("http", "grpc"):
        tls_scheme = "http"
    else:
        tls_scheme = ""
    if port is None:
        port = 80 if tls_scheme == "http" else 443
    shown = f"[{host}]" if ":" in host else host
    return Endpoint(target=f"{shown}:{port}", host=host, port=port, scheme=tls_scheme or "https")


# The variables that name a config file, in the SDK's order (flyte.config._reader.resolve_config_path).
_CONFIG_ENVS = ("UCTL_CONFIG", "FLYTECTL_CONFIG")


def _git_root_config() -> Path | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):  # no git: no git root
        return None
    if out.returncode != 0 or not out.stdout.strip():
        return None
    return Path(out.stdout.strip()) / ".flyte" / "config.yaml"


def find_config_file() -> Path | None:
    """The Flyte config file, searched as the flyte SDK searches: ./config.yaml,
    ./.flyte/config.yaml, <git root>/.flyte/config.yaml, $UCTL_CONFIG, $FLYTECTL_CONFIG,
    ~/.union/config.yaml, ~/.flyte/config.yaml."""
    for path in (Path("config.yaml"), Path(".flyte") / "config.yaml"):
        if path.is_file():
            return path
    git = _git_root_config()
    if git is not None and git.is_file():
        return git
    for name in _CONFIG_ENVS:
        env = os.environ.get(name)
        if env:
            # The SDK takes the variable's file without looking further, so a wrong path is an error.
            path = Path(env).expanduser()
            if not path.is_file():
                raise ConfigError(f"{name} names {path}, which does not exist; fix or unset it")
            return path
    for path in (Path.home() / ".union" / "config.yaml", Path.home() / ".flyte" / "config.yaml"):
        if path.is_file():
            return path
    return None


def load_config_file(path: Path) -> dict[str, Any]:
    import yaml  # here: most notebooks use no config file, and yaml costs ~14 ms to import

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(
            f"cannot read Flyte config {path}: {e}; fix the file or pass init(endpoint=...)"
        ) from e
    if not isinstance(data, dict):
        raise ConfigError(f"Flyte config {path} is not a mapping; expected keys admin.endpoint, task.project")
    admin = data.get("admin") or {}
    task = data.get("task") or {}
    if not isinstance(admin, dict) or not isinstance(task, dict):
        raise ConfigError(f"Flyte config {path}: 'admin' and 'task' must be mappings")
    if not admin.get("endpoint"):
        raise ConfigError(f"Flyte config {path} has no admin.endpoint; add one or pass init(endpoint=...)")
    return {
        "endpoint": str(admin["endpoint"]),
        "insecure": admin.get("insecure"),
        "project": task.get("project"),
        "domain": task.get("domain"),
        "org": task.get("org"),
        "ca_cert": admin.get("caCertFilePath"),
        "credentials": credentials_from_file(admin, path),
    }


def build_config(
    endpoint: str | None = None,
    *,
    insecure: bool | None = None,
    org: str | None = None,
    project: str | None = None,
    domain: str | None = None,
    api_key: str | None = None,
    ca_cert: str | os.PathLike[str] | None = None,
    config_file: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    credentials: Credentials | None = None,
) -> Config:
    """Resolve arguments, then a config file, then the embedded service, in that order.
    ``credentials`` (how to get tokens) come with the endpoint, e.g. from the flyte SDK."""
    # An empty name is a mistake (often an unset variable), not a wish for the default: runs
    # would quietly go to another project.
    for name, value, default in (("project", project, DEFAULT_PROJECT), ("domain", domain, DEFAULT_DOMAIN)):
        if value is not None and not value.strip():
            raise ConfigError(
                f"{name} is empty; pass its name, e.g. init({name}={default!r}), or leave it out to"
                f" use the config file's task.{name} (else {default!r})"
            )
    from_file: dict[str, Any] = {}
    source = "arguments"
    embedded = False
    directory: Path | None = None
    key_org: str | None = None
    # A Flyte API key (the SDK's order: the argument, then $FLYTE_API_KEY) names the endpoint and
    # the org, and signs in with client credentials; any other api_key is a bearer token as it is.
    flyte_key = None
    if api_key is not None and looks_like_api_key(api_key):
        flyte_key = decode_api_key(api_key, source="init(api_key=...)")
        credentials, api_key = flyte_key.credentials("init(api_key=...)"), None
    elif api_key is None and endpoint is None and config_file is None and os.environ.get(FLYTE_API_KEY_ENV):
        flyte_key = decode_api_key(os.environ[FLYTE_API_KEY_ENV], source=f"${FLYTE_API_KEY_ENV}")
        credentials = flyte_key.credentials(f"${FLYTE_API_KEY_ENV}")
    if flyte_key is not None:
        key_org = flyte_key.org
        if endpoint is None:
            # The SDK dials the key's host as dns:///host over TLS: port 443 (parse_endpoint's default).
            endpoint, source = flyte_key.endpoint, credentials.source if credentials else source
            if insecure is None:
                insecure = False
    if endpoint is None:
        path = Path(config_file) if config_file else find_config_file()
        if path is not None:
            if not path.is_file():
                raise ConfigError(f"config file {path} does not exist")
            from_file = load_config_file(path)
            endpoint = from_file["endpoint"]
            source = str(path)
        else:
            from .local_service import embedded_token, ensure_service

            directory = Path(data_dir) if data_dir else default_data_dir()
            endpoint = ensure_service(directory)
            # Its own token, never the key of a remote service that may be in the environment.
            api_key = api_key or embedded_token(directory)
            embedded = True
            source = f"embedded service ({directory})"
    parsed = parse_endpoint(endpoint)
    if insecure is None:
        insecure = from_file.get("insecure")
    roots = ca_cert if ca_cert is not None else from_file.get("ca_cert")
    if insecure is None:
        insecure = not roots and (parsed.scheme == "http" or parsed.is_loopback)
    credentials = credentials or from_file.get("credentials")
    key = api_key if api_key is not None or embedded or credentials else os.environ.get(API_KEY_ENV) or None
    cfg = Config(
        endpoint=parsed,
        insecure=bool(insecure),
        org=org if org is not None else (key_org or from_file.get("org") or ""),
        project=project if project is not None else from_file.get("project") or DEFAULT_PROJECT,
        domain=domain if domain is not None else from_file.get("domain") or DEFAULT_DOMAIN,
        api_key=key,
        ca_cert=_ca_cert(roots, insecure=bool(insecure)),
        embedded=embedded,
        data_dir=directory,
        source=source,
        credentials=credentials,
    )
    if (cfg.api_key or cfg.credentials) and cfg.insecure and not parsed.is_loopback:
        raise ConfigError(
            f"refusing to send an API key or token in clear text to {parsed.target}; use TLS "
            "(insecure=False, or an https:// endpoint) or drop the key"
        )
    return cfg


def _ca_cert(path: str | os.PathLike[str] | None, *, insecure: bool) -> Path | None:
    if not path:
        return None
    resolved = Path(path).expanduser()
    if insecure:
        raise ConfigError(f"ca_cert {resolved} is for TLS, but insecure=True asks for plain text; drop one")
    if not resolved.is_file():
        raise ConfigError(f"ca_cert {resolved} does not exist; pass the service's PEM certificate")
    return resolved
