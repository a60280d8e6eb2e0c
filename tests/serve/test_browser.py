"""`textdiffusion serve` in a real browser: the command serves the shipped models on a free localhost port, headless
Chromium (driven over its DevTools protocol with websocket-client) loads the page, runs a denoise and an infill, and
the test checks that the streamed steps and the final text appear, then takes a screenshot.

Skipped, saying why, where Chromium is not installed (`.ci/run` installs it: `apt-get install chromium`). All traffic
stays on 127.0.0.1: Chromium resolves no other host. The screenshot goes to the test's folder; to refresh the README's
picture: `TEXTDIFFUSION_SCREENSHOT=docs/serve.png python -m pytest tests/serve/test_browser.py`.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serve extra is not installed")
websocket = pytest.importorskip("websocket", reason="websocket-client is not installed")

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="no Chromium found (tried chromium, chromium-browser, google-chrome): install it with "
        "`apt-get install chromium` to run the browser test",
    ),
]
ROOT = Path(__file__).resolve().parents[2]
LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


def lines_until(stream, pattern: str, timeout: float) -> re.Match:
    """Read `stream` (a process's stderr) until a line matches `pattern`; everything read is kept for errors."""
    seen: list[str] = []
    found: list[re.Match] = []

    def read():
        for line in stream:
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                found.append(match)
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    if not found:
        raise AssertionError(f"no line matching {pattern!r} in {timeout} s; got:\n{''.join(seen)}")
    return found[0]


@pytest.fixture(scope="module")
def server():
    """`textdiffusion serve` on a free port (it binds port 0 and prints the one it got)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    command = [sys.executable, "-m", "textdiffusion", "serve", "--port", "0", "--device", "cpu"]
    command += ["--model", "shakespeare-char", "--model", "typo-fixer", "--model", "yelp-sentiment"]
    command += ["--lexicon", "none", "--threads", "1"]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        match = lines_until(process.stderr, r"serving on (http://127\.0\.0\.1:\d+/)", timeout=120)
        yield match.group(1)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


class DevTools:
    """A minimal Chrome DevTools Protocol client: `call(method, **params)` waits for its answer; exceptions thrown
    in the page are collected in `errors`."""

    def __init__(self, url: str) -> None:
        self.ws = websocket.create_connection(url, timeout=30, suppress_origin=True)
        self.next_id = 0
        self.errors: list[str] = []

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = json.loads(self.ws.recv())
            if message.get("method") == "Runtime.exceptionThrown":
                details = message["params"]["exceptionDetails"]
                self.errors.append(details.get("exception", {}).get("description", details["text"]))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message.get("result", {})
        raise AssertionError(f"{method}: no answer in 60 s")

    def evaluate(self, expression: str):
        result = self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.1)
        raise AssertionError(f"still false after {timeout} s: {expression}")

    def close(self) -> None:
        self.ws.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    command = [
        CHROMIUM,
        "--headless=new",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-pings",
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",  # localhost only
        "--remote-debugging-port=0",  # Chromium picks a free port and writes it to DevToolsActivePort
        f"--user-data-dir={profile}",
        "--window-size=1200,800",
        "--hide-scrollbars",
        "about:blank",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.insert(
            1, "--no-sandbox"
        )  # Chromium's sandbox refuses to run as root (CI containers)
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        active = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not (active.exists() and active.read_text().count("\n") >= 1):
            if time.monotonic() > deadline or process.poll() is not None:
                pytest.fail(f"Chromium did not start (exit code {process.poll()})")
            time.sleep(0.1)
        port = int(active.read_text().split("\n")[0])
        with LOCAL.open(f"http://127.0.0.1:{port}/json/list", timeout=30) as response:
            pages = [t for t in json.load(response) if t["type"] == "page"]
        tools = DevTools(pages[0]["webSocketDebuggerUrl"])
        tools.call("Runtime.enable")
        tools.call("Page.enable")
        tools.call(
            "Emulation.setDeviceMetricsOverride",
            width=1200,
            height=800,
            deviceScaleFactor=1,
            mobile=False,
        )
        yield tools
        tools.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


SET = """((id, value) => {
  const el = document.getElementById(id);
  el.value = value;
  el.dispatchEvent(new Event("input", {bubbles: true}));
  el.dispatchEvent(new Event("change", {bubbles: true}));
  return el.value;
})"""


def fill(tools: DevTools, values: dict) -> None:
    for key, value in values.items():
        assert tools.evaluate(f"{SET}({json.dumps(key)}, {json.dumps(value)})") == str(value)


def api(url: str, task: str, body: dict) -> dict:
    request = urllib.request.Request(
        f"{url}api/{task}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with LOCAL.open(request, timeout=120) as response:
        return json.load(response)


def run_on_page(tools: DevTools) -> dict:
    runs = tools.evaluate("textdiffusion.runs")
    tools.evaluate("document.getElementById('run').click()")
    tools.wait_for(
        f"textdiffusion.runs === {runs + 1} && ['done', 'failed'].includes(document.body.dataset.state)",
        timeout=120,
    )
    state = tools.evaluate(
        "({state: document.body.dataset.state, frames: textdiffusion.frames,"
        " result: document.getElementById('result').innerText,"
        " error: document.getElementById('error').innerText,"
        " meta: document.getElementById('meta').innerText,"
        " slider: Number(document.getElementById('slider').max)})"
    )
    assert state["state"] == "done", state["error"]
    return state


def test_the_page_streams_a_denoise_and_an_infill(server, browser, tmp_path):
    tools = browser
    tools.call("Page.navigate", url=server)
    tools.wait_for("document.body?.dataset.state === 'ready'", timeout=60)  # body: null mid-load
    tabs = tools.evaluate("[...document.querySelectorAll('#tabs button')].map(b => b.dataset.task)")
    assert tabs == ["generate", "infill", "denoise", "style"]  # no captioner loaded: no caption tab

    # denoise, the model writing whole lines (--lexicon none: the only mode), 8 steps of the cached sampler
    tools.evaluate("document.getElementById('tab-denoise').click()")
    assert tools.evaluate("document.getElementById('mode').value") == "lines"
    denoise = {"text": "This is a tset of the sytem.", "steps": 8, "sampler": "cached"}
    fill(tools, {"text": denoise["text"], "steps": 8, "sampler": "cached", "seed": 0})
    page = run_on_page(tools)
    expected = api(server, "denoise", {**denoise, "mode": "lines", "model": "typo-fixer"})
    assert len(page["frames"]) == page["slider"] == 8 == expected["steps_streamed"]
    assert page["frames"][0]["masked"] > 0 and page["frames"][-1]["masked"] == 0
    assert page["result"].strip() == expected["text"]
    assert "8 steps streamed" in page["meta"]

    # infill: two blanks of 6 characters, 24 steps of the cached sampler (one frame per step)
    tools.evaluate("document.getElementById('tab-infill').click()")
    text = tools.evaluate("document.getElementById('text').value")  # the page's example
    assert text.count("___") == 2
    fill(tools, {"blank-length": 6, "steps": 24, "seed": 0, "sampler": "cached"})
    page = run_on_page(tools)
    infill = {"text": text, "blank_length": 6, "steps": 24, "seed": 0, "sampler": "cached"}
    expected = api(server, "infill", infill)
    frames = page["frames"]
    assert len(frames) == 24 and 0 < frames[0]["masked"] <= 12 and frames[-1]["masked"] == 0
    assert page["result"].strip() == expected["text"].strip()
    for fill_text in expected["fills"]:  # each fill is marked in the result
        assert fill_text in tools.evaluate(
            "[...document.querySelectorAll('#result mark')].map(m => m.textContent)"
        )
    # the live view ends on the last step; the slider replays an earlier one with its masked blocks
    assert tools.evaluate("document.querySelectorAll('#view .m').length") == 0
    fill(tools, {"slider": 9})
    assert tools.evaluate("document.querySelectorAll('#view .m').length") == frames[8]["masked"] > 0
    assert tools.evaluate("document.getElementById('step-label').textContent") == "9 / 24"
    assert tools.errors == []  # no exception in the page's script

    shot = base64.b64decode(tools.call("Page.captureScreenshot", format="png")["data"])
    assert shot[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(shot[16:20], "big") == 1200
    (tmp_path / "serve.png").write_bytes(shot)
    target = os.environ.get("TEXTDIFFUSION_SCREENSHOT")
    if target:
        Path(target).write_bytes(shot)
