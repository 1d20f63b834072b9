"""The run page's address, signed in, for a click on the widget's run name.

    signed_page_url(run.client.config, run.url)   # url + "#token=...", or None

The embedded service's run page calls the service with its token; the page takes it from a
``#token=`` fragment (the browser never sends a fragment to a server). The view asks for the
address with a custom message and the kernel answers with one: no trait may hold the token,
traits are saved into the notebook with the widget state.
"""

from __future__ import annotations

import hmac
from urllib.parse import quote, urlsplit

from ..client.config import Config
from ..client.local_service import embedded_token


def signed_page_url(config: Config, url: str) -> str | None:
    """``url`` with the token in its fragment when it is a page of the embedded service this
    client talks to and the client's token is that service's own; else None.

    Never a key for another service: a remote endpoint, OAuth credentials or a token that is
    not the data folder's token file's all give None, so a cluster's credentials cannot end up
    in an address bar, a browser history or a screen share."""
    if not (config.embedded and config.data_dir and config.api_key and config.credentials is None):
        return None
    if not config.endpoint.is_loopback:
        return None
    token = embedded_token(config.data_dir)
    if not token or not hmac.compare_digest(token.encode(), config.api_key.encode()):
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or parts.query or parts.fragment:
        return None
    if not url.startswith(config.console_url + "/"):
        return None
    return f"{url}#token={quote(token, safe='')}"
