"""Files a flyte SDK client uploads (code bundles, offloaded inputs), kept under the data folder.

    blobs = Blobs(layout.root / "blobs")
    signed, native, expires = blobs.upload_location(md5, "fast123.tar.gz", "http://127.0.0.1:8090")
    # the client PUTs the file to ``signed``; tasks read ``native`` (a file:// URI)

The SDK remembers an upload for a day and then sends only its ``native_url``, so blobs stay on
disk across restarts. A PUT carries no bearer token (the SDK sends none to signed URLs): the
URL's HMAC, made with a secret of this process, is what allows it, for ``expires_in`` seconds.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import re
import secrets
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .faults import invalid, precondition

UPLOAD_PREFIX = "/upload/"
#: The largest file one PUT may store (code bundles are usually a few MiB).
MAX_UPLOAD_BYTES = 1024 * 1024 * 1024
#: How long a signed URL is valid when the client asks for no particular time, and at most.
DEFAULT_EXPIRY = 900
MAX_EXPIRY = 7 * 24 * 3600
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def _safe_filename(name: str) -> str:
    base = _SAFE_NAME.sub("_", name.rsplit("/", 1)[-1]).lstrip(".")
    return base[:120] or "blob"


class Blobs:
    def __init__(self, root: Path, max_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self._secret = secrets.token_bytes(32)

    # -- where things go ------------------------------------------------------------------

    def path_for(self, md5_hex: str, filename: str) -> Path:
        return self.root / md5_hex / _safe_filename(filename)

    def local_path(self, uri: str) -> Path:
        """The file behind a ``file://`` URI (or plain path) this service handed out; anything
        else is refused, so that a client cannot make the service read files it chose."""
        path = Path(unquote(urlsplit(uri).path) if uri.startswith("file://") else uri).resolve()
        root = self.root.resolve()
        if not path.is_relative_to(root) or not path.is_file():
            raise invalid(
                f"{uri!r} is not a file this service stored: upload it first (DataProxyService"
                " UploadInputs or CreateUploadLocation)"
            )
        return path

    def _sign(self, key: str, md5_hex: str, expires: int) -> str:
        text = f"{key}\n{md5_hex}\n{expires}".encode()
        return hmac.new(self._secret, text, hashlib.sha256).hexdigest()

    def upload_location(
        self, md5: bytes, filename: str, base_url: str, expires_in: int = 0, length: int = 0
    ) -> tuple[str, str, int]:
        """(signed URL to PUT to, file:// URI tasks read, expiry in epoch seconds)."""
        if len(md5) != 16:
            raise invalid(
                "CreateUploadLocation needs content_md5, the 16-byte MD5 digest of the file: the"
                " local Run service keys uploads by it and checks the uploaded bytes against it"
            )
        if length > self.max_bytes:
            raise precondition(self.too_large(length))
        if not filename:
            raise invalid("CreateUploadLocation needs a filename")
        md5_hex = md5.hex()
        key = f"{md5_hex}/{_safe_filename(filename)}"
        expires = int(time.time()) + min(expires_in or DEFAULT_EXPIRY, MAX_EXPIRY)
        signature = self._sign(key, md5_hex, expires)
        signed = f"{base_url}{UPLOAD_PREFIX}{quote(key)}?expires={expires}&sig={signature}"
        return signed, self.path_for(md5_hex, filename).as_uri(), expires

    def too_large(self, size: int) -> str:
        return (
            f"the upload is {size:,} bytes; the local Run service stores files of at most"
            f" {self.max_bytes:,} bytes (keep large data out of the code bundle: read it from"
            " storage in the task)"
        )

    def store_inputs(self, data: bytes) -> tuple[str, str]:
        """Offloaded inputs: (file:// URI, hash of the content)."""
        digest = hashlib.md5(data).hexdigest()
        path = self.path_for(digest, "inputs.pb")
        if not path.exists():
            _write_atomically(path, [data])
        return path.as_uri(), base64.urlsafe_b64encode(hashlib.sha256(data).digest()[:8]).decode().rstrip("=")

    # -- the PUT route --------------------------------------------------------------------

    async def handle_put(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        status, message = await self._put(scope, receive)
        body = message.encode()
        headers = [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
        ]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _put(self, scope: dict[str, Any], receive: Any) -> tuple[int, str]:
        if scope.get("method") != "PUT":
            return 405, "uploads are HTTP PUT requests to the URL CreateUploadLocation returned"
        key = unquote(scope["path"][len(UPLOAD_PREFIX) :])
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        md5_hex, _, name = key.partition("/")
        try:
            expires = int(query["expires"][0])
            signature = query["sig"][0]
        except (KeyError, ValueError, IndexError):
            return 403, "this upload URL is not signed: ask CreateUploadLocation for one"
        if not hmac.compare_digest(signature, self._sign(key, md5_hex, expires)):
            return 403, "this upload URL's signature is not valid here (the service restarted?): ask again"
        if time.time() > expires:
            return 403, "this upload URL has expired: ask CreateUploadLocation for a new one"
        headers = {k.lower(): v for k, v in scope.get("headers", ())}
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return 413, self.too_large(int(declared))
        sent_md5 = headers.get(b"content-md5")
        if sent_md5 is not None:
            try:
                if base64.b64decode(sent_md5, validate=True).hex() != md5_hex:
                    return 400, "Content-MD5 differs from the content_md5 the upload URL was made for"
            except binascii.Error:
                return 400, "Content-MD5 is not base64"
        path = self.path_for(md5_hex, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written beside its final name as it arrives, renamed only once its MD5 is right.
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            with open(tmp, "wb") as handle:
                problem = await self._receive_into(handle, receive, md5_hex)
            if problem is not None:
                return problem
            os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        return 201, "stored"

    async def _receive_into(self, handle: Any, receive: Any, md5_hex: str) -> tuple[int, str] | None:
        digest = hashlib.md5()
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return 400, "the client went away before the upload ended"
            body = message.get("body", b"")
            size += len(body)
            if size > self.max_bytes:
                return 413, self.too_large(size)
            digest.update(body)
            handle.write(body)
            if not message.get("more_body", False):
                break
        if digest.hexdigest() != md5_hex:
            return 400, f"the uploaded bytes do not have the MD5 {md5_hex} the upload URL was made for"
        return None


def _write_atomically(path: Path, chunks: list[bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        with open(tmp, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
