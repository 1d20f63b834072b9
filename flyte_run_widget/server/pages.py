"""The run page and the runs list page: HTML at the Flyte console's URL shape, and the script
and styles they load (``static/page.{js,css}``, built from ``js/src/page.js``). The page talks to
this same port from the browser (Connect, JSON); its HTML holds no data, so it is served without
a token, while every call it makes passes the Door's token check like any other.

    pages = Pages.from_package(default_project="flytesnacks", default_domain="development")
    await pages(scope, receive, send)     # GET /v2/domain/{d}/project/{p}/runs[/{name}]
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

STATIC = Path(__file__).resolve().parent.parent / "static"
ASSET_PREFIX = "/_page/"
# The run page and the list page, as the Flyte console spells them.
_RUN = re.compile(r"^/v2/domain/([^/]+)/project/([^/]+)/runs/([^/]+)/?$")
_LIST = re.compile(r"^/v2/domain/([^/]+)/project/([^/]+)/runs/?$")

# Only this origin's script, styles and calls; nothing inline, no frames, no forms elsewhere.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]
_ASSETS = {"page.js": b"text/javascript; charset=utf-8", "page.css": b"text/css; charset=utf-8"}

# No data in the page: the script reads the URL and asks the service. The title is static, so
# no run name ever enters the HTML.
_HTML = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Flyte runs</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/_page/page.css">
<script type="module" src="/_page/page.js"></script>
</head>
<body class="frw-page"><main id="frw-root"></main></body>
</html>
"""


def page_kind(path: str) -> str | None:
    """``"run"``, ``"list"`` or None for a path this module does not serve as HTML."""
    if _RUN.match(path):
        return "run"
    if _LIST.match(path):
        return "list"
    return None


def list_path(project: str, domain: str) -> str:
    return f"/v2/domain/{quote(domain, safe='')}/project/{quote(project, safe='')}/runs"


@dataclass
class Pages:
    """The ASGI handler of the pages, their assets and ``/`` (a redirect to the default
    project's runs); anything else is 404. The Door sends it only GETs and HEADs."""

    assets: dict[str, bytes]
    default_project: str = "flytesnacks"
    default_domain: str = "development"

    @classmethod
    def from_package(cls, default_project: str = "flytesnacks", default_domain: str = "development") -> Pages:
        # Read once: a wheel's files do not change under a running service. A checkout without
        # the built bundle still serves the HTML, whose script then fails to load (404).
        assets = {name: (STATIC / name).read_bytes() for name in _ASSETS if (STATIC / name).is_file()}
        return cls(assets, default_project, default_domain)

    def serves(self, path: str) -> bool:
        return path == "/" or path.startswith(ASSET_PREFIX) or page_kind(path) is not None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope["path"]
        head = scope["method"] == "HEAD"
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(
                send, 405, b"text/plain; charset=utf-8", b"only GET here\n", head, [(b"allow", b"GET, HEAD")]
            )
        elif path == "/":
            where = list_path(self.default_project, self.default_domain).encode()
            await _respond(send, 302, b"text/plain; charset=utf-8", b"", head, [(b"location", where)])
        elif page_kind(path) is not None:
            headers = [(b"cache-control", b"no-store")]
            await _respond(send, 200, b"text/html; charset=utf-8", _HTML.encode(), head, headers)
        elif path.startswith(ASSET_PREFIX) and path[len(ASSET_PREFIX) :] in self.assets:
            name = path[len(ASSET_PREFIX) :]
            # Revalidated each time: a new version of the package brings a new bundle.
            headers = [(b"cache-control", b"no-cache")]
            await _respond(send, 200, _ASSETS[name], self.assets[name], head, headers)
        else:
            await _respond(send, 404, b"text/plain; charset=utf-8", b"not found\n", head)


async def _respond(
    send: Any,
    status: int,
    content_type: bytes,
    body: bytes,
    head: bool,
    extra: Sequence[tuple[bytes, bytes]] = (),
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *_SECURITY_HEADERS,
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body, "more_body": False})
