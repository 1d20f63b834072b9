"""The flyte SDK's connection settings, for a kernel where ``flyte.init(...)`` ran and
``frw.init()`` did not: the widget then talks to the service the SDK talks to.

    flyte.init(endpoint="dns:///flyte.example.com", project="ml", domain="development")
    run = flyte.run(main, x=1)
    run                     # our widget, on flyte.example.com, project ml, domain development

Never imports ``flyte``: an SDK that was not imported was not initialised either.

What is read, and from where (the SDK has a public API only for project and domain):

- project, domain: ``flyte.current_project()``, ``flyte.current_domain()``
- org: ``flyte._initialize.get_init_config().org`` (the SDK's own guess from the endpoint
  included, so both send the same org)
- endpoint, plain text or TLS: the SDK's client (``get_init_config().client``): ``.endpoint`` and
  ``.session_config.insecure`` (flyte 2.1 and later, Connect) or ``.insecure`` (flyte 2.0.x, gRPC)
- CA: ``session_config.auth_kwargs["ca_cert_file_path"]``; with ``insecure_skip_verify`` the
  certificates the SDK fetched from the server and trusts (``session_config.tls_ca_cert``).
  flyte 2.0.x keeps neither: there the system's roots are used unless ``frw.init(ca_cert=...)``.

- credentials (TLS only, as the SDK signs in only over TLS): the API key the SDK was given
  (``session_config.api_key``, from ``flyte.init_from_api_key``), else its auth settings
  (``session_config.auth_kwargs``: ``auth_type``, ``client_id``, ``client_credentials_secret``,
  ``scopes``, ``command``); our client then gets its own tokens the same way. The SDK's default
  ``Pkce`` gives way to a bearer token of this package's (``FLYTE_RUN_WIDGET_API_KEY``).
  flyte 2.0.x keeps neither: there the bearer token of ``FLYTE_RUN_WIDGET_API_KEY`` is used.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import Any

from ..errors import ConfigError
from .config import API_KEY_ENV, Config, build_config
from .credentials import AUTH_TYPES, Credentials, decode_api_key

SOURCE = "the flyte SDK's settings (flyte.init)"


def sdk_client() -> Any | None:
    """The client the flyte SDK was initialised with in this interpreter, or None (flyte not
    imported, not initialised, or initialised without an endpoint, i.e. for local runs only)."""
    initialize = sys.modules.get("flyte._initialize")
    if initialize is None:
        return None
    try:
        if not initialize.is_initialized():
            return None
        return getattr(initialize.get_init_config(), "client", None)
    except Exception:  # an SDK whose internals moved: act as if it were not there
        return None


def config_from_sdk(client: Any) -> Config:
    """Our Config for the service ``client`` (the SDK's) talks to."""
    settings = _settings(client)
    try:
        cfg = build_config(
            settings["endpoint"],
            insecure=settings["insecure"],
            org=settings["org"] or "",
            project=settings["project"],
            domain=settings["domain"],
            ca_cert=settings["ca_cert"],
            credentials=settings["credentials"],
        )
    except ConfigError as e:
        raise ConfigError(
            f"the flyte SDK's settings (endpoint {settings['endpoint']!r}) cannot be used here: {e}; "
            "call frw.init(...) to say which service the widget should use"
        ) from e
    return replace(cfg, ca_pem=settings["ca_pem"], source=SOURCE)


def _settings(client: Any) -> dict[str, Any]:
    flyte = sys.modules.get("flyte")
    initialize = sys.modules.get("flyte._initialize")
    init_cfg = initialize.get_init_config() if initialize is not None else None
    session = getattr(client, "session_config", None)
    ca_cert: str | None = None
    ca_pem: bytes | None = None
    if session is not None:  # flyte 2.1 and later: a Connect session
        endpoint = str(session.endpoint)
        insecure = bool(session.insecure)
        ca_cert = (getattr(session, "auth_kwargs", None) or {}).get("ca_cert_file_path")
        if not ca_cert and getattr(session, "insecure_skip_verify", False):
            ca_pem = getattr(session, "tls_ca_cert", None)
    else:  # flyte 2.0.x: a gRPC channel, with the endpoint and the TLS choice beside it
        endpoint = str(client.endpoint)
        insecure = bool(getattr(client, "insecure", False))
    credentials = None if insecure or session is None else _credentials(session)
    return {
        "credentials": credentials,
        "endpoint": endpoint,
        "insecure": insecure,
        "ca_cert": None if insecure else ca_cert,
        "ca_pem": None if insecure else ca_pem,
        "org": getattr(init_cfg, "org", None),
        "project": _public(flyte, "current_project"),
        "domain": _public(flyte, "current_domain"),
    }


def _public(flyte: Any, name: str) -> str | None:
    try:
        value = getattr(flyte, name)()
    except Exception:  # the SDK raises when it was initialised without a project or domain
        return None
    return str(value) if value else None


def _credentials(session: Any) -> Credentials | None:
    """How the SDK signs in to its endpoint, as our Credentials (None: no sign-in of its own)."""
    api_key = getattr(session, "api_key", None)
    if isinstance(api_key, str) and api_key:
        return decode_api_key(api_key, source="the flyte SDK's API key").credentials(
            "the flyte SDK's API key (flyte.init_from_api_key)"
        )
    auth = dict(getattr(session, "auth_kwargs", None) or {})
    auth_type = str(auth.get("auth_type") or "Pkce")
    if auth_type not in AUTH_TYPES:  # e.g. Passthrough: nothing we can do the same way
        return None
    if auth_type == "Pkce" and os.environ.get(API_KEY_ENV):
        return None  # the SDK's default, where this package was given a token of its own
    secret = auth.get("client_credentials_secret") or auth.get("client_secret") or ""
    return Credentials(
        auth_type,
        str(auth.get("client_id") or ""),
        str(secret),
        tuple(str(s) for s in auth.get("scopes") or ()),
        tuple(str(c) for c in auth.get("command") or ()),
        source=f"the flyte SDK's settings (auth_type {auth_type})",
    )
