"""Debian's Chromium driven by Playwright for the console's browser tests and timings.

Playwright never downloads a browser here: it launches the system's /usr/bin/chromium
(`apt-get install chromium`), with the background services that would reach the network
turned off.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]

#: How Chromium reports an HTTP error answer in the page's console (it is the browser's
#: network log, not something the page wrote).
_FAILED_LOAD = re.compile(
    r"^Failed to load resource: the server responded with a status of (\d{3})\b"
)


def launch(playwright: Any) -> Any:
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)


@dataclass
class PageLog:
    """Everything a page did that a test checks at its end: the requests it made, the
    answers' statuses, console errors and uncaught exceptions."""

    requests: list[Any] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def attach(self, page: Any) -> None:
        page.on("request", lambda request: self.requests.append(request))
        page.on("response", lambda response: self.statuses.append(response.status))
        page.on(
            "console",
            lambda message: (
                self.console_errors.append(message.text) if message.type == "error" else None
            ),
        )
        page.on("pageerror", lambda error: self.page_errors.append(str(error)))

    def foreign_requests(self, origin: str) -> list[str]:
        """Requests to anywhere but `origin` (scheme://host:port)."""
        own = urlsplit(origin)
        return [
            r.url
            for r in self.requests
            if (urlsplit(r.url).scheme, urlsplit(r.url).netloc) != (own.scheme, own.netloc)
        ]

    def unexpected_console_errors(self, expected_statuses: Iterable[int]) -> list[str]:
        """Console errors other than the browser's own line for an HTTP error answer the
        test provoked on purpose (a refused filter, a wrong key): those must match an
        answer of an expected status, one line per answer."""
        allowed = set(expected_statuses)
        budget = {s: self.statuses.count(s) for s in allowed}
        unexpected = []
        for text in self.console_errors:
            match = _FAILED_LOAD.match(text)
            status = int(match.group(1)) if match else None
            if status in allowed and budget.get(status, 0) > 0:
                budget[status] -= 1
            else:
                unexpected.append(text)
        return unexpected
