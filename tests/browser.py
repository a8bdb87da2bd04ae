"""A headless Chromium for the docs-site tests, driven over the DevTools protocol, offline.

``serve(directory)`` serves a directory on 127.0.0.1 with :mod:`http.server` on a free port (a
child process, stopped by its PID). ``Browser`` starts Debian's ``chromium`` headless with a
fresh profile and every background service off, opens one tab, and intercepts every request the
page makes (the Fetch domain): a request to a loopback address goes on, any other is failed and
recorded in ``Browser.blocked``, so a test can assert that a page works offline and asks no CDN
for anything. DNS resolution is also refused for every host but loopback
(``--host-resolver-rules``), as a second fence.

Uses ``websocket-client`` (a dev dependency) for the protocol's WebSocket.
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--mute-audio",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
)

LOOPBACK = ("127.0.0.1", "localhost", "::1", "[::1]")


def chromium() -> str | None:
    """The Chromium binary, or None."""
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1; yields the base URL (ending in ``/``)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
         "--directory", str(directory)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("http.server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Browser:
    """One headless Chromium with one tab; use as a context manager."""

    def __init__(self, width: int = 1280, height: int = 900, timeout_s: float = 30.0) -> None:
        self.width, self.height, self.timeout_s = width, height, timeout_s
        self.blocked: list[str] = []
        self.requested: list[str] = []
        self._next_id = 0
        self._events: list[dict[str, Any]] = []

    # -- process ------------------------------------------------------------------------------

    def __enter__(self) -> Browser:
        import websocket  # websocket-client

        binary = chromium()
        if binary is None:
            raise RuntimeError("chromium is not installed")
        self._profile = tempfile.mkdtemp(prefix="srcip-chromium-")
        self._proc = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}",
             "--remote-debugging-port=0", f"--window-size={self.width},{self.height}",
             "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        port_file = Path(self._profile) / "DevToolsActivePort"
        deadline = time.monotonic() + self.timeout_s
        while not (port_file.exists() and len(port_file.read_text().splitlines()) >= 2):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError("chromium did not open its DevTools port")
            time.sleep(0.05)
        port, path = port_file.read_text().splitlines()[:2]
        self._ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}{path}", timeout=self.timeout_s, suppress_origin=True
        )
        target = self._call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self._session = self._call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        self.send("Fetch.enable", {"patterns": [{"urlPattern": "*"}]})
        self.send("Page.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
        )
        return self

    def __exit__(self, *exc: object) -> None:
        ws = getattr(self, "_ws", None)
        if ws is not None:
            with contextlib.suppress(Exception):
                ws.close()
        proc = getattr(self, "_proc", None)
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(getattr(self, "_profile", ""), ignore_errors=True)

    # -- protocol -----------------------------------------------------------------------------

    def _call(self, method: str, params: dict[str, Any] | None, session: str | None = None) -> Any:
        self._next_id += 1
        mine = self._next_id
        msg: dict[str, Any] = {"id": mine, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self._ws.send(json.dumps(msg))
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            reply = json.loads(self._ws.recv())
            if reply.get("id") == mine and "method" not in reply:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self._event(reply)
        raise TimeoutError(method)

    def send(self, method: str, params: dict[str, Any] | None = None) -> Any:
        """Send a command to the tab and return its result (events meanwhile are handled)."""
        return self._call(method, params, self._session)

    def _event(self, event: dict[str, Any]) -> None:
        if event.get("method") == "Fetch.requestPaused":
            params = event["params"]
            url = params["request"]["url"]
            self.requested.append(url)
            host = urlsplit(url).hostname or ""
            if host in LOOPBACK or url.startswith(("data:", "blob:", "about:")):
                reply = ("Fetch.continueRequest", {"requestId": params["requestId"]})
            else:
                self.blocked.append(url)
                reply = (
                    "Fetch.failRequest",
                    {"requestId": params["requestId"], "errorReason": "BlockedByClient"},
                )
            self._next_id += 1
            self._ws.send(
                json.dumps(
                    {"id": self._next_id, "method": reply[0], "params": reply[1],
                     "sessionId": self._session}
                )
            )  # fmt: skip
        elif "method" in event:
            self._events.append(event)

    def wait_for(self, method: str) -> dict[str, Any]:
        """Wait for an event of the tab (e.g. ``Page.loadEventFired``)."""
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            for i, event in enumerate(self._events):
                if event["method"] == method:
                    return self._events.pop(i)
            self._event(json.loads(self._ws.recv()))
        raise TimeoutError(method)

    # -- page ---------------------------------------------------------------------------------

    def open(self, url: str, settle_s: float = 0.5) -> None:
        """Load ``url`` and wait for its load event, then let scripts settle."""
        self._events.clear()
        self.send("Page.navigate", {"url": url})
        self.wait_for("Page.loadEventFired")
        end = time.monotonic() + settle_s
        while time.monotonic() < end:
            self.evaluate("1")
            time.sleep(0.05)

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page and return its (JSON-able) value."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path, clip: dict[str, float] | None = None) -> bytes:
        """A PNG of the viewport (or of ``clip``, page coordinates), also written to ``path``."""
        params: dict[str, Any] = {"format": "png"}
        if clip is not None:
            params["clip"] = {**clip, "scale": 1}
            params["captureBeyondViewport"] = True
        data = base64.b64decode(self.send("Page.captureScreenshot", params)["data"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return data


def main() -> None:
    """``python tests/browser.py SITE_DIR PATH OUT.png [WIDTH HEIGHT]``: a screenshot of a page
    of a built site (full page), and the requests it made that were blocked."""
    site, page, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
    width = int(sys.argv[4]) if len(sys.argv) > 4 else 1280
    height = int(sys.argv[5]) if len(sys.argv) > 5 else 900
    with serve(site) as base, Browser(width, height) as browser:
        browser.open(base + page.lstrip("/"))
        full = browser.evaluate(
            "({w: document.documentElement.scrollWidth, h: document.documentElement.scrollHeight,"
            " y: window.scrollY})"
        )
        fragment = "#" in page
        clip = {"x": 0, "y": full["y"] if fragment else 0, "width": width,
                "height": height if fragment else min(full["h"], 12000)}  # fmt: skip
        browser.screenshot(out, clip)
        print(json.dumps({"blocked": browser.blocked, "requests": len(browser.requested)}))


if __name__ == "__main__":
    main()
