"""The operator page in headless Chromium, against a real pipeline fed with the sample bundle.

`clearing run` prices and clears the sample on the broker into a fresh ledger; a worker with
the dashboard installed is then pointed at that ledger (and at the run's topics and consumer
group). Chromium, driven over the DevTools protocol, loads the page at 1366×768 and 1920×1080;
the figures it shows must be the 2026-01 statement's, formatted as the page formats money.
Screenshots are kept under test-artifacts/.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from fixtures.stream import stream_prefix_name, stream_topics_cleanup
from prometheus_client.parser import text_string_to_metric_families
from support.dashboard import metric_names, panels
from support.paths import CASES, ROOT
from support.services import unavailable

from clearing import auth
from clearing.core.provinces import label
from clearing.dashboard.money import yuan
from clearing.ops.run import RunConfig, run
from clearing.ops.workers import free_port
from clearing.store.db import open_engine
from clearing.topics import EVENTS_PARTITIONS

pytestmark = [pytest.mark.kafka, pytest.mark.browser, pytest.mark.timeout(900)]

ARTIFACTS = ROOT / "test-artifacts"
# The hook clearing/stream/app.py carries (a no-op here when it already does).
WORKER = (
    "import clearing.worker as m; from clearing.dashboard import DashboardConfig, install; "
    "install(m.app, DashboardConfig.from_stream(m.config)); m.app.main()"
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


# ------------------------------------------------------------------------- a DevTools client


class Browser:
    """Headless Chromium and one page, over the DevTools protocol's websocket."""

    def __init__(self, binary: str, profile: Path) -> None:
        self.binary, self.profile = binary, profile
        self.log = profile.parent / "chromium.log"
        self.process: subprocess.Popen | None = None
        self.session: aiohttp.ClientSession | None = None
        self.ws: aiohttp.ClientWebSocketResponse | None = None
        self.ids = itertools.count(1)

    async def start(self, timeout: float = 60) -> None:
        self.profile.mkdir(parents=True, exist_ok=True)
        active = self.profile / "DevToolsActivePort"
        command = [
            self.binary,
            *FLAGS,
            f"--user-data-dir={self.profile}",
            "--remote-debugging-port=0",
            "--window-size=1366,768",
            "about:blank",
        ]
        with open(self.log, "wb") as log:
            self.process = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + timeout
        while not (active.exists() and len(active.read_text().splitlines()) >= 2):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"chromium did not start:\n{self.log.read_text()[-3000:]}")
            await asyncio.sleep(0.1)
        port = active.read_text().splitlines()[0]
        self.session = aiohttp.ClientSession()
        async with self.session.get(f"http://127.0.0.1:{port}/json/list") as reply:
            targets = await reply.json()
        page = next(t for t in targets if t["type"] == "page")
        self.ws = await self.session.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)

    async def call(self, method: str, **params: object) -> dict:
        assert self.ws is not None
        ident = next(self.ids)
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        async for message in self.ws:
            reply = json.loads(message.data)
            if reply.get("id") == ident:  # anything else is an event: not needed here
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
        raise RuntimeError("the DevTools connection closed")

    async def evaluate(self, expression: str) -> object:
        result = await self.call(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression[:60]}…: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, timeout: float = 60) -> object:
        deadline = time.monotonic() + timeout
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page never satisfied: {expression}")
            await asyncio.sleep(0.25)

    async def viewport(self, width: int, height: int) -> None:
        await self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=False,
        )

    async def screenshot(self, path: Path, width: int, height: int, full: bool) -> None:
        await self.viewport(width, height)
        if full:
            layout = await self.call("Page.getLayoutMetrics")
            await self.viewport(width, max(height, int(layout["cssContentSize"]["height"])))
        shot = await self.call("Page.captureScreenshot", format="png")
        path.write_bytes(base64.b64decode(shot["data"]))
        await self.viewport(width, height)

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        if self.session is not None:
            await self.session.close()
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


# ------------------------------------------------------------------------- the pipeline


@dataclass
class Pipeline:
    url: str
    out: Path
    log: Path
    token: str  # a viewer's: the dashboard's figures need one


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(binary).exists():
        unavailable(f"no headless Chromium at {binary} (deploy/setup.sh --test installs it)")
    return binary


@pytest.fixture(scope="module")
def pipeline(
    chromium: str, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Pipeline]:
    home = tmp_path_factory.mktemp("dashboard-home")
    out = tmp_path_factory.mktemp("dashboard-out")
    prefix = stream_prefix_name()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
        mp.setenv("CLEARING_HOME", str(home))
        summary = run(
            RunConfig(
                refdata=CASES / "refdata",
                events=CASES / "events.jsonl",
                out=out,
                prefix=prefix,
                web_port=free_port(),
                stall_timeout=120,
            )
        )
    engine = open_engine(summary.db_url)
    token = auth.add(engine, "viewer", "browser-viewer")
    engine.dispose()
    port = free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP": kafka_bootstrap,
        "CLEARING_TOPIC_PREFIX": prefix,
        "CLEARING_DB_URL": summary.db_url,
        "CLEARING_HOME": str(home),
        "CLEARING_WEB_PORT": str(port),
        "CLEARING_DASHBOARD_SAMPLE": "1",
        "CLEARING_DASHBOARD_TTL": "2",
        "PYTHONWARNINGS": "ignore::DeprecationWarning",
    }
    log = home / "dashboard-worker.log"
    with open(log, "wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-c", WORKER, "worker", "-l", "warn"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_page(url, token, process, log)
        yield Pipeline(url, out, log, token)
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        stream_topics_cleanup(kafka_bootstrap, prefix)


def wait_for_page(
    url: str, token: str, process: subprocess.Popen, log: Path, timeout: float = 180
) -> None:
    deadline = time.monotonic() + timeout
    overview = urllib.request.Request(
        f"{url}/dashboard/api/overview", headers={"Authorization": f"Bearer {token}"}
    )
    while True:
        if process.poll() is not None:
            pytest.fail(f"worker exited {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(overview, timeout=30) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"the dashboard never answered:\n{log.read_text()[-4000:]}")
        time.sleep(0.5)


# ------------------------------------------------------------------------- the test

READ_PAGE = """(() => {
  const text = el => el.textContent.trim();
  const rows = sel => [...document.querySelectorAll(sel)];
  return {
    state: text(document.querySelector("#period-state")),
    totals: Object.fromEntries(rows("#period-totals .kpi").map(k =>
      [k.dataset.k, text(k.querySelector(".value"))])),
    obligations: rows("#obligations tbody tr").map(tr => [tr.dataset.pair,
      ...[...tr.cells].map(text)]),
    net: Object.fromEntries(rows("#net-positions tbody tr").map(tr =>
      [tr.dataset.province, text(tr.querySelector("td.net"))])),
    transfers: rows("#transfers tbody tr").map(tr => [...tr.cells].map(text)),
    matrix: Object.fromEntries(rows("#matrix-svg rect[data-pair]").map(r =>
      [r.dataset.pair, text(r.querySelector("title"))])),
  };
})()"""


def expected_page(statement: dict) -> dict:
    obs = statement["obligations"]

    def total(key: str) -> int:
        return sum(ob[key] for ob in obs)

    return {
        "state": "issued",
        "totals": {
            "settlements": f"{total('settlements'):,}",
            "reversals": f"{total('reversals'):,}",
            "fund_pay_fen": yuan(total("fund_pay_fen")),
            "critical_pay_fen": yuan(sum(ob.get("critical_pay_fen", 0) for ob in obs)),
            "assistance_pay_fen": yuan(sum(ob.get("assistance_pay_fen", 0) for ob in obs)),
            "due_fen": yuan(sum(ob.get("due_fen", ob["fund_pay_fen"]) for ob in obs)),
            "personal_pay_fen": yuan(total("personal_pay_fen")),
            "total_fen": yuan(total("total_fen")),
        },
        "obligations": [
            [
                f"{ob['payer']}-{ob['payee']}",
                label(ob["payer"]),
                label(ob["payee"]),
                f"{ob['settlements']:,}",
                f"{ob['reversals']:,}",
                yuan(ob["total_fen"]),
                yuan(ob["fund_pay_fen"]),
                yuan(ob.get("critical_pay_fen", 0)),
                yuan(ob.get("assistance_pay_fen", 0)),
                yuan(ob.get("due_fen", ob["fund_pay_fen"])),
                yuan(ob["personal_pay_fen"]),
            ]
            for ob in obs
        ],
        "net": {p: yuan(v) for p, v in statement["net_positions"].items()},
        "transfers": [
            [label(t["from"]), label(t["to"]), yuan(t["amount_fen"])]
            for t in statement["transfers"]
        ],
        "matrix": {
            f"{ob['payer']}-{ob['payee']}": f"{label(ob['payer'])} → {label(ob['payee'])}: "
            f"{yuan(ob['fund_pay_fen'])} fund share, {ob['settlements']:,} settlements"
            for ob in obs
        },
    }


async def look(
    chromium: str, url: str, token: str, profile: Path
) -> tuple[dict, list[str], list[Path]]:
    browser = Browser(chromium, profile)
    await browser.start()
    try:
        await browser.viewport(1366, 768)
        # Signed in as a viewer: the page keeps the token it was given for the tab's session.
        await browser.call("Page.navigate", url=f"{url}/?period=2026-01")
        await browser.wait_for("document.readyState === 'complete'")
        await browser.evaluate(
            f"sessionStorage.setItem('clearing-operator-token', {json.dumps(token)})"
        )
        await browser.call("Page.navigate", url=f"{url}/?period=2026-01")
        await browser.wait_for(
            "!!document.body && document.body.dataset.ready === '1' &&"
            " document.body.dataset.period === '2026-01'"
        )
        # The live charts have drawn at least one interval (samples every second here).
        await browser.wait_for("document.querySelectorAll('#throughput-svg path').length > 0", 60)
        shown = await browser.evaluate(READ_PAGE)
        amounts = [0, 1, -1, 99, 100, -12345, 123456789, 10**15 + 7, -(2**53 - 1)]
        formatted = await browser.evaluate(f"{json.dumps(amounts)}.map(yuan)")
        assert formatted == [yuan(a) for a in amounts], "the page formats money differently"
        ARTIFACTS.mkdir(exist_ok=True)
        shots = [
            ARTIFACTS / "dashboard-1366x768.png",
            ARTIFACTS / "dashboard-1366-full.png",
            ARTIFACTS / "dashboard-1920x1080-full.png",
        ]
        await browser.screenshot(shots[0], 1366, 768, full=False)
        await browser.screenshot(shots[1], 1366, 768, full=True)
        await browser.screenshot(shots[2], 1920, 1080, full=True)
        overflow = await browser.evaluate(
            "document.documentElement.scrollWidth > document.documentElement.clientWidth"
        )
        return shown, ([] if not overflow else ["the page scrolls sideways"]), shots
    finally:
        await browser.close()


def test_the_page_shows_the_statement_of_the_sample(
    pipeline: Pipeline, chromium: str, tmp_path: Path
) -> None:
    statement = json.loads((CASES / "statement-2026-01.json").read_text())
    produced = json.loads((pipeline.out / "statement-2026-01.json").read_text())
    assert produced["net_positions"] == statement["net_positions"]

    shown, problems, shots = asyncio.run(
        look(chromium, pipeline.url, pipeline.token, tmp_path / "profile")
    )
    want = expected_page(statement)
    assert shown["state"] == want["state"]
    assert shown["totals"] == want["totals"]
    assert shown["obligations"] == want["obligations"]
    assert {p: v for p, v in shown["net"].items() if p in want["net"]} == want["net"]
    assert set(want["net"]) <= set(shown["net"])
    assert shown["transfers"] == want["transfers"]
    assert {p: shown["matrix"][p] for p in want["matrix"]} == want["matrix"]
    assert sum(1 for t in shown["matrix"].values() if not t.endswith(": none")) == len(
        want["matrix"]
    )
    assert not problems
    assert all(path.stat().st_size > 10_000 for path in shots)


def scrape_until_lag_is_known(url: str, token: str, log: Path, timeout: float = 60) -> str:
    """The worker's /metrics (as a viewer, as Prometheus scrapes) once it reports the group's
    lag (the broker may answer late)."""
    deadline = time.monotonic() + timeout
    request = urllib.request.Request(f"{url}/metrics", headers={"Authorization": f"Bearer {token}"})
    while True:
        with urllib.request.urlopen(request, timeout=30) as reply:
            text = reply.read().decode()
        if 'clearing_dashboard_source_up{source="kafka"} 1.0' in text:
            return text
        if time.monotonic() > deadline:
            pytest.fail(f"no consumer lag in /metrics:\n{text[-3000:]}\n{log.read_text()[-3000:]}")
        time.sleep(1)


def test_the_workers_metrics_cover_the_grafana_dashboard(pipeline: Pipeline) -> None:
    text = scrape_until_lag_is_known(pipeline.url, pipeline.token, pipeline.log)
    exported = set()
    for family in text_string_to_metric_families(text):
        exported.add(family.name)
        exported.update(s.name for s in family.samples)
        if family.type == "counter":
            exported.add(f"{family.name}_total")
        if family.type == "histogram":
            exported.update(f"{family.name}{s}" for s in ("_bucket", "_sum", "_count"))
    queried = {n for p in panels() for t in p["targets"] for n in metric_names(t["expr"])}
    assert queried <= exported, queried - exported
    # The group caught up with the whole sample: no lag on any partition of the events topic.
    lags = [
        s
        for f in text_string_to_metric_families(text)
        if f.name == "clearing_consumer_lag"
        for s in f.samples
        if s.labels["topic"].endswith(".events")
    ]
    assert sorted(int(s.labels["partition"]) for s in lags) == list(range(EVENTS_PARTITIONS))
    assert all(s.value == 0 for s in lags)
