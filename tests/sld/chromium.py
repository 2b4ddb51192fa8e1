"""Open a page in headless Chromium over the DevTools protocol (``--remote-debugging-pipe``, standard library only).

Chromium's own ``--enable-logging`` prints console messages without their level, so errors are collected through the
protocol instead: console calls of type ``error``/``assert``, uncaught exceptions, and browser log entries of level
``error`` (failed resource loads, blocked requests).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import select
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--remote-debugging-pipe", "--hide-scrollbars")


def find_chromium() -> str | None:
    """Return Debian's chromium (or another Chrome) on PATH, if any."""
    return next((path for name in ("chromium", "chromium-browser", "google-chrome") if (path := shutil.which(name))),
                None)


@dataclass
class PageLoad:
    """What loading a page showed: console errors and the screenshot."""

    errors: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    screenshot: Path | None = None


class _Pipe:
    def __init__(self, process: subprocess.Popen[bytes], write_fd: int, read_fd: int) -> None:
        self.process, self.write_fd, self.read_fd = process, write_fd, read_fd
        self.buffer = b""
        self.next_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout_s: float = 30.0) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.write_fd, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            reply = self.read(deadline)
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return dict(reply.get("result", {}))
            self.events.append(reply)

    def read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("Chromium did not answer in time")
            ready, _, _ = select.select([self.read_fd], [], [], remaining)
            if ready:
                chunk = os.read(self.read_fd, 1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return dict(json.loads(message))

    def wait_for(self, method: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        if any(event.get("method") == method for event in self.events):
            return
        while True:
            event = self.read(deadline)
            self.events.append(event)
            if event.get("method") == method:
                return

    def drain(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        try:
            while True:
                self.events.append(self.read(deadline))
        except TimeoutError:
            pass


def load_page(binary: str, url: str, screenshot: Path, profile: Path, *, width: int = 1280,
              height: int = 900) -> PageLoad:
    """Load ``url``, wait for its load event, save a full-page PNG screenshot, and collect console errors."""
    to_child_read, to_child_write = os.pipe()
    from_child_read, from_child_write = os.pipe()

    def child_fds() -> None:
        # The protocol pipe is fd 3 (commands in) and fd 4 (replies out) of the browser.
        os.dup2(to_child_read, 3)
        os.dup2(from_child_write, 4)

    process = subprocess.Popen([binary, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}",
                                "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               preexec_fn=child_fds, pass_fds=(3, 4))
    os.close(to_child_read)
    os.close(from_child_write)
    pipe = _Pipe(process, to_child_write, from_child_read)
    try:
        target = pipe.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = pipe.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            pipe.send(f"{domain}.enable", session=session)
        pipe.send("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        pipe.send("Page.navigate", {"url": url}, session=session)
        pipe.wait_for("Page.loadEventFired", timeout_s=60)
        pipe.drain(1.0)  # console messages of load handlers
        shot = pipe.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                         session=session, timeout_s=60)
        screenshot.write_bytes(base64.b64decode(shot["data"]))
        pipe.drain(0.2)
        with contextlib.suppress(RuntimeError, TimeoutError):
            pipe.send("Browser.close", timeout_s=5)
    finally:
        os.close(to_child_write)
        os.close(from_child_read)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return _collect(pipe.events, screenshot)


def _collect(events: list[dict[str, Any]], screenshot: Path) -> PageLoad:
    result = PageLoad(screenshot=screenshot)
    for event in events:
        params = event.get("params", {})
        method = event.get("method")
        if method == "Runtime.consoleAPICalled":
            text = " ".join(str(arg.get("value", arg.get("description", ""))) for arg in params.get("args", []))
            result.console.append(f"{params.get('type')}: {text}")
            if params.get("type") in ("error", "assert"):
                result.errors.append(f"console.{params.get('type')}: {text}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            result.errors.append(f"exception: {details.get('exception', {}).get('description') or details.get('text')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            result.errors.append(f"log: {entry.get('text')} {entry.get('url', '')}".strip())
    return result
