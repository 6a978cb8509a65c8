"""Drive Debian's headless chromium, and serve folders over HTTP, for the page tests.

Each chromium call starts a fresh process with its own profile folder, loads
one address, runs the page's scripts for a budget of virtual time and exits.
Virtual time pauses while network fetches are pending (the DevTools policy
pauseIfNetworkFetchesPending), so the budget covers the page's timers and the
service's response time does not count against it.
"""

import base64
import contextlib
import fcntl
import json
import os
import select
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import pytest
from service_process import free_port

CHROMIUM = Path("/usr/bin/chromium")

# Flags that turn off chromium's background requests (component updates, sync
# and other background networking) and QUIC, and its need for a display, a GPU
# or a setuid sandbox.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

DEFAULT_VIRTUAL_TIME_MS = 5000
DEFAULT_TIMEOUT_S = 90


class BrowserError(RuntimeError):
    """Chromium exited with an error, timed out or wrote no output."""


def require_chromium() -> Path:
    """Return the chromium path, or skip the test when chromium is missing.

    With CI=true in the environment, a missing chromium fails the test instead,
    so that CI cannot pass without running the browser tests.
    """
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM

    reason = f"{CHROMIUM} not found: install Debian's chromium package to run the browser tests"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true, so a missing browser is an error)")
    pytest.skip(reason)


def _run_chromium(arguments: list[str], timeout_s: float) -> str:
    chromium = require_chromium()
    with tempfile.TemporaryDirectory(prefix="ganforge-chromium-") as profile:
        command = [str(chromium), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *arguments]
        try:
            completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as error:
            raise BrowserError(f"chromium timed out after {timeout_s} s: {' '.join(command)}") from error

    if completed.returncode != 0:
        raise BrowserError(
            f"chromium exited with status {completed.returncode}: {' '.join(command)}\n"
            f"stderr (last 2000 characters):\n{completed.stderr[-2000:]}"
        )
    return completed.stdout


def dump_dom(
    url: str, virtual_time_ms: int = DEFAULT_VIRTUAL_TIME_MS, timeout_s: float = DEFAULT_TIMEOUT_S
) -> str:
    """Load url and return the serialized DOM after the page's scripts ran."""
    html = _run_chromium([f"--virtual-time-budget={virtual_time_ms}", "--dump-dom", url], timeout_s)
    if not html.strip():
        raise BrowserError(f"chromium printed no DOM for {url}")
    return html


def take_screenshot(
    url: str,
    path: Path,
    window_size: tuple[int, int] = (1280, 900),
    virtual_time_ms: int = DEFAULT_VIRTUAL_TIME_MS,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Load url and write a PNG screenshot of the window to path."""
    width, height = window_size
    arguments = [
        f"--virtual-time-budget={virtual_time_ms}",
        f"--window-size={width},{height}",
        "--hide-scrollbars",
        f"--screenshot={path}",
        url,
    ]
    _run_chromium(arguments, timeout_s)
    if not path.is_file():
        raise BrowserError(f"chromium wrote no screenshot to {path} for {url}")
    return path


# ---- Reading a dumped DOM ----------------------------------------------------

VOID_ELEMENTS = {
    "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr",
}  # fmt: skip


@dataclass
class Element:
    """One element of a parsed page, with its attributes, children and text."""

    tag: str
    attributes: dict[str, str | None]
    children: list["Element"] = field(default_factory=list)
    text_parts: list[str] = field(default_factory=list)

    def text(self) -> str:
        """Return the text of this element and its descendants, whitespace folded."""
        parts = list(self.text_parts)
        for child in self.children:
            parts.append(child.text())
        return " ".join(" ".join(parts).split())

    def iter(self) -> Iterator["Element"]:
        """Yield this element and all its descendants in document order."""
        yield self
        for child in self.children:
            yield from child.iter()

    def find_all(self, tag: str) -> list["Element"]:
        return [element for element in self.iter() if element.tag == tag]

    def find_id(self, element_id: str) -> "Element":
        """Return the element with this id; raise LookupError when there is none."""
        for element in self.iter():
            if element.attributes.get("id") == element_id:
                return element
        raise LookupError(f"no element with id {element_id!r} in the page")


class _TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self._open = [self.root]

    def handle_starttag(self, tag, attrs):
        element = Element(tag, dict(attrs))
        self._open[-1].children.append(element)
        if tag not in VOID_ELEMENTS:
            self._open.append(element)

    def handle_startendtag(self, tag, attrs):
        self._open[-1].children.append(Element(tag, dict(attrs)))

    def handle_endtag(self, tag):
        # Close up to the nearest open element of this tag, as browsers do
        # for elements whose end tags are optional.
        for depth in range(len(self._open) - 1, 0, -1):
            if self._open[depth].tag == tag:
                del self._open[depth:]
                return

    def handle_data(self, data):
        self._open[-1].text_parts.append(data)


def parse_html(html: str) -> Element:
    """Parse an HTML document, such as a dumped DOM, into an Element tree."""
    builder = _TreeBuilder()
    builder.feed(html)
    builder.close()
    return builder.root


# ---- A static file server -----------------------------------------------------


def wait_for_http(url: str, process: subprocess.Popen, timeout_s: float = 30) -> None:
    """Poll url until it responds with any HTTP status; raise if process exits or the timeout passes first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server process exited with status {process.returncode} before {url} responded")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not respond within {timeout_s} s")


@contextlib.contextmanager
def serve_folder(folder: Path) -> Iterator[str]:
    """Serve folder with Python's http.server on 127.0.0.1 and yield its base URL.

    The server has no API routes, so every request to /models or /generate
    returns 404, as a page served without the ganforge service would see.
    """
    port = free_port()
    command = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory", str(folder), str(port)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(f"{base_url}/", process)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# ---- Driving a page over the DevTools protocol ----------------------------------

# Key events for Input.dispatchKeyEvent: key, code and Windows virtual key code.
KEYS = {
    "Tab": ("Tab", "Tab", 9),
    "Enter": ("Enter", "Enter", 13),
    "End": ("End", "End", 35),
    "Home": ("Home", "Home", 36),
    "ArrowLeft": ("ArrowLeft", "ArrowLeft", 37),
    "ArrowRight": ("ArrowRight", "ArrowRight", 39),
}


class DevToolsPage:
    """One chromium tab driven over the DevTools protocol.

    Chromium runs with --remote-debugging-pipe: it reads JSON commands, each
    ended by a NUL byte, from file descriptor 3 and writes replies and events
    the same way to file descriptor 4. Events are read and dropped.
    """

    def __init__(self, process: subprocess.Popen, command_fd: int, reply_fd: int, timeout_s: float):
        self.process = process
        self.timeout_s = timeout_s
        self._command_fd = command_fd
        self._reply_fd = reply_fd
        self._buffer = b""
        self._last_id = 0
        self._session_id: str | None = None

    def _send(self, message: dict) -> None:
        data = json.dumps(message).encode() + b"\0"
        while data:
            written = os.write(self._command_fd, data)
            data = data[written:]

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise BrowserError(f"chromium sent no DevTools reply within {self.timeout_s} s")
            readable, _, _ = select.select([self._reply_fd], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(self._reply_fd, 1 << 16)
            if not chunk:
                raise BrowserError(f"chromium closed the DevTools pipe (exit status {self.process.poll()})")
            self._buffer += chunk
        message, _, self._buffer = self._buffer.partition(b"\0")
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, browser: bool = False) -> dict:
        """Send one DevTools command to the tab, or to the browser with browser=True, and return its result."""
        self._last_id += 1
        message = {"id": self._last_id, "method": method, "params": params or {}}
        if self._session_id is not None and not browser:
            message["sessionId"] = self._session_id
        self._send(message)

        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._receive(deadline)
            if reply.get("id") != self._last_id:
                continue
            if "error" in reply:
                raise BrowserError(f"DevTools command {method} failed: {reply['error']}")
            return reply.get("result", {})

    def attach(self, url: str, init_script: str | None = None) -> None:
        """Open url in a new tab. init_script, when given, runs in every document of the tab before its own scripts."""
        target = self.call("Target.createTarget", {"url": "about:blank"}, browser=True)
        attached = self.call("Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, browser=True)
        self._session_id = attached["sessionId"]
        if init_script is not None:
            self.call("Page.enable")
            self.call("Page.addScriptToEvaluateOnNewDocument", {"source": init_script})
        navigation = self.call("Page.navigate", {"url": url})
        if navigation.get("errorText"):
            raise BrowserError(f"chromium could not open {url}: {navigation['errorText']}")
        self.wait_for("location.href !== 'about:blank' && document.readyState === 'complete'")

    def evaluate(self, expression: str):
        """Run a JavaScript expression in the page, await it when it is a promise, and return its JSON value."""
        params = {"expression": expression, "awaitPromise": True, "returnByValue": True}
        result = self.call("Runtime.evaluate", params)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            description = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"script {expression!r} raised: {description}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float = 15):
        """Evaluate expression until its value is truthy and return that value; raise TimeoutError if it never is."""
        deadline = time.monotonic() + timeout_s
        while True:
            value = self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expression!r} was still {value!r} after {timeout_s} s")
            time.sleep(0.05)

    def press(self, key: str) -> None:
        """Press and release one key of KEYS in the focused element, as a keyboard would."""
        name, code, key_code = KEYS[key]
        event = {"key": name, "code": code, "windowsVirtualKeyCode": key_code}
        down = {"type": "keyDown", **event}
        if key == "Enter":
            down["text"] = "\r"
        self.call("Input.dispatchKeyEvent", down)
        self.call("Input.dispatchKeyEvent", {"type": "keyUp", **event})

    def insert_text(self, text: str) -> None:
        """Type text into the focused element."""
        self.call("Input.insertText", {"text": text})

    def screenshot(self, x: float, y: float, width: float, height: float) -> bytes:
        """Return a PNG of one rectangle of the viewport, in CSS pixels, at one device pixel per CSS pixel."""
        clip = {"x": x, "y": y, "width": width, "height": height, "scale": 1}
        result = self.call("Page.captureScreenshot", {"format": "png", "clip": clip})
        return base64.b64decode(result["data"])

    def allow_downloads(self, folder: Path) -> None:
        self.call("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(folder)}, browser=True)

    def close(self) -> None:
        try:
            self.call("Browser.close", browser=True)
        except (BrowserError, OSError):
            pass  # chromium is killed below when it does not exit by itself
        os.close(self._command_fd)
        os.close(self._reply_fd)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def open_page(
    url: str, window_size: tuple[int, int] = (1280, 900), timeout_s: float = 30, init_script: str | None = None
) -> Iterator[DevToolsPage]:
    """Start headless chromium, open url in a new tab and yield the DevToolsPage that drives it.

    init_script, when given, runs in each document of the tab before the document's own scripts.
    """
    chromium = require_chromium()
    command_read, command_write = os.pipe()
    reply_read, reply_write = os.pipe()

    def connect_pipes():
        # In the child: chromium expects the command pipe as fd 3 and the reply pipe as fd 4.
        # Both are first moved above 10, so that neither dup2 overwrites the other.
        command_fd = fcntl.fcntl(command_read, fcntl.F_DUPFD, 10)
        reply_fd = fcntl.fcntl(reply_write, fcntl.F_DUPFD, 10)
        os.dup2(command_fd, 3)
        os.dup2(reply_fd, 4)

    width, height = window_size
    with tempfile.TemporaryDirectory(prefix="ganforge-chromium-") as profile:
        arguments = [
            str(chromium), *CHROMIUM_FLAGS, f"--user-data-dir={profile}",
            f"--window-size={width},{height}", "--remote-debugging-pipe", "about:blank",
        ]  # fmt: skip
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen(
                arguments, stdout=subprocess.DEVNULL, stderr=stderr, close_fds=False, preexec_fn=connect_pipes
            )
            os.close(command_read)
            os.close(reply_write)
            page = DevToolsPage(process, command_write, reply_read, timeout_s)
            try:
                page.attach(url, init_script)
                yield page
            except BrowserError as error:
                stderr.seek(0)
                tail = stderr.read().decode(errors="replace")[-2000:]
                raise BrowserError(f"{error}\nchromium stderr (last 2000 characters):\n{tail}") from error
            finally:
                page.close()
