"""The web console's static files: `/` (for browsers) and `/console/<file>`.

Plain ASGI around the app, outside its auth middleware: the page and its scripts hold no
data, and a browser cannot send a key with a navigation. Everything the page shows it asks
of the API, with the key the user signs in with. `/` still answers JSON (the service
index) to clients that do not ask for HTML, such as curl.

The files ship inside the package and are read once; nothing is fetched from elsewhere,
and the Content-Security-Policy forbids the page to contact any other origin.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

PREFIX = "/console/"
TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}
#: The page may load and call only its own origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
#: Replaced in index.html by whether the server asks for a key, so that a locked server's
#: page shows its sign-in form without a first request refused.
AUTH_PLACEHOLDER = b"{{HAIMA_AUTH}}"


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: bytes


def load_assets(auth_required: bool) -> dict[str, Asset]:
    """Every file of the package's console folder, by URL path."""
    folder = resources.files("haima.server").joinpath("console")
    found: dict[str, Asset] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1] if "." in entry.name else ""
        if not entry.is_file() or suffix not in TYPES:
            continue
        body = entry.read_bytes()
        if entry.name == "index.html":
            body = body.replace(AUTH_PLACEHOLDER, b"key" if auth_required else b"none")
        etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode() + b'"'
        found[PREFIX + entry.name] = Asset(body, TYPES[suffix], etag)
    found["/"] = found[PREFIX + "index.html"]
    return found


class ConsoleAssets:
    def __init__(self, app: ASGIApp, auth_required: bool) -> None:
        self.app = app
        self.assets = load_assets(auth_required)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        headers = dict(scope["headers"])
        if path == "/" and b"text/html" not in headers.get(b"accept", b""):
            await self.app(scope, receive, send)  # the service index as JSON
            return
        asset = self.assets.get(path)
        if asset is None:
            await self.app(scope, receive, send)
            return
        common = [
            (b"etag", asset.etag),
            # Small files, revalidated on each load: an upgraded server's page is current.
            (b"cache-control", b"no-cache"),
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"no-referrer"),
            (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
            (b"vary", b"accept"),
        ]
        if headers.get(b"if-none-match") == asset.etag:
            await send({"type": "http.response.start", "status": 304, "headers": common})
            await send({"type": "http.response.body", "body": b""})
            return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", asset.content_type.encode()),
                    (b"content-length", str(len(asset.body)).encode()),
                    *common,
                ],
            }
        )
        body = b"" if scope["method"] == "HEAD" else asset.body
        await send({"type": "http.response.body", "body": body})
