"""The review queue after the README's demo, in headless Chromium.

The demo's flow on a small generated month (`clearing simulate` with every pattern planted,
then `clearing run` through the broker, its workers kept serving the dashboard, as
`python -m clearing.ops.demo --serve` does). An operator signs in on the page: the queue lists
a flag of every planted rule, each person-level one with its two settlements side by side
(ids, dates, amounts in yuan) as `clearing flags` raised them offline; the rule and province
filters narrow the rows; a confirm and a dismiss, each with a note, are shown with who and when
and are still there in the store and after the page is loaded again.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from fixtures.stream import stream_prefix_name, stream_topics_cleanup
from integration.browser.test_dashboard_browser import Browser, chromium  # noqa: F401

from clearing import auth
from clearing.core.monitoring import Monitor
from clearing.core.pricer import Pricer
from clearing.dashboard.money import yuan
from clearing.ops.bundle import event_lines, load_refdata
from clearing.ops.flags import flag_lines
from clearing.ops.run import RunConfig, RunSummary, run
from clearing.ops.simulate.bundle import generate_bundle
from clearing.ops.workers import free_port
from clearing.store import db
from clearing.store.schema import flag_reviews

pytestmark = [pytest.mark.kafka, pytest.mark.browser, pytest.mark.timeout(600)]

RULES = (
    "OVERLAPPING_STAYS",
    "OUTPATIENT_DURING_STAY",
    "QUICK_READMISSION",
    "DUPLICATE_BILLING",
    "HIGH_REVERSAL_RATE",
)
# The smallest month of the demo's kind in which every rule has a planted case.
EVENTS, SEED, PERIOD = 6_000, 2026, "2026-01"

Json = dict[str, Any]


@dataclass
class Demo:
    url: str
    token: str
    db_url: str
    offline: list[Json]  # `clearing flags` of the bundle


@pytest.fixture(scope="module")
def demo(
    chromium: str,  # noqa: F811
    kafka_bootstrap: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Demo]:
    home = tmp_path_factory.mktemp("flags-home")
    out = tmp_path_factory.mktemp("flags-demo")
    bundle = out / "bundle"
    generate_bundle(bundle, events=EVENTS, seed=SEED, period=PERIOD)
    refdata = load_refdata(bundle / "refdata")
    lines = flag_lines(Pricer(refdata), Monitor(), event_lines(bundle / "events.jsonl"))
    offline = [orjson.loads(line) for line in lines]
    prefix = stream_prefix_name()
    summary: RunSummary | None = None
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KAFKA_BOOTSTRAP", kafka_bootstrap)
        mp.setenv("CLEARING_HOME", str(home))
        try:
            summary = run(
                RunConfig(
                    refdata=bundle / "refdata",
                    events=bundle / "events.jsonl",
                    out=out,
                    prefix=prefix,
                    web_port=free_port(),
                    keep_workers=True,
                    stall_timeout=120,
                )
            )
            engine = db.open_engine(summary.db_url)
            token = auth.add(engine, "operator", "alice")
            engine.dispose()
            yield Demo(f"http://127.0.0.1:{summary.web_port}", token, summary.db_url, offline)
        finally:
            for worker in summary.workers if summary is not None else ():
                worker.stop()
            stream_topics_cleanup(kafka_bootstrap, prefix)


READ_QUEUE = """(() => [...document.querySelectorAll("#flags tbody tr")].map(tr => {
  const cells = [...tr.cells];
  const side = td => td ? [...td.querySelectorAll("div")].map(d => d.textContent.trim()) : [];
  return cells.length < 6 ? { empty: tr.textContent.trim() } : {
    rule: cells[0].textContent.trim(), period: cells[1].textContent.trim(),
    who: cells[2].textContent.trim(), earlier: side(cells[3]), later: side(cells[4]),
    review: side(cells[5]), buttons: [...cells[5].querySelectorAll("button")].map(
      b => b.dataset.flag + "|" + b.dataset.status) };
}))()"""


def side_text(s: Json) -> list[str]:
    """A settlement as the queue shows it: id, kind and hospital; dates; amount."""
    dates = f"{s['admitted_on']} → {s['discharged']}" if s["discharged"] else s["admitted_on"]
    return [f"{s['settlement_id']} · {s['kind']} · {s['hospital_id']}", dates, yuan(s["total_fen"])]


async def settle(browser: Browser, flag_id: str | None = None) -> list[Json]:
    """The queue's rows once the page has drawn them (and, when given, a row names flag_id)."""
    await browser.wait_for(
        "document.querySelector('#flags tbody tr') &&"
        " !document.querySelector('#flags tbody td.empty')"
        + (f" && !!document.querySelector('button[data-flag=\"{flag_id}\"]')" if flag_id else "")
    )
    rows = await browser.evaluate(READ_QUEUE)
    assert isinstance(rows, list)
    return rows


async def choose(browser: Browser, select: str, value: str) -> list[Json]:
    """Picks a filter's option as a user does, and reads the rows the page then shows."""
    await browser.evaluate(
        f"(() => {{ const s = document.getElementById({json.dumps(select)});"
        f" s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); }})()"
    )
    if select == "flag-rule" and value:
        await browser.wait_for(
            f"(() => {{ const rows = {READ_QUEUE}; return rows.length > 0 &&"
            f" rows.every(r => r.rule === {json.dumps(value)}); }})()"
        )
    elif value:
        await browser.wait_for(
            "performance.getEntriesByType('resource').some(e => e.name.includes("
            f"{json.dumps(f'province={value}')}))"
        )
    await asyncio.sleep(0.5)  # the answer drawn
    return await settle(browser)


async def review(browser: Browser, flag_id: str, status: str, note: str) -> None:
    """Clicks Confirm or Dismiss on a flag's row and answers the page's note prompt."""
    await browser.evaluate(f"window.prompt = () => {json.dumps(note)}")
    await browser.evaluate(
        f"document.querySelector('button[data-flag={json.dumps(flag_id)}]"
        f"[data-status={json.dumps(status)}]').click()"
    )
    await browser.wait_for(
        f"[...document.querySelectorAll('button[data-flag={json.dumps(flag_id)}]')]"
        f".some(b => b.closest('td').textContent.includes({json.dumps(status + ' by alice')}))"
    )


async def walk(chromium_binary: str, demo: Demo, profile: Path) -> dict[str, Any]:
    browser = Browser(chromium_binary, profile)
    await browser.start()
    seen: dict[str, Any] = {}
    try:
        await browser.viewport(1366, 768)
        await browser.call("Page.navigate", url=f"{demo.url}/")
        await browser.wait_for("!!document.getElementById('signin')")
        seen["before_signin"] = await browser.evaluate(
            "document.querySelector('#flags tbody').textContent.trim()"
        )
        await browser.evaluate(
            f"document.getElementById('token').value = {json.dumps(demo.token)};"
            " document.getElementById('signin').click()"
        )
        seen["all"] = await settle(browser)
        seen["by_rule"] = {rule: await choose(browser, "flag-rule", rule) for rule in RULES}
        await choose(browser, "flag-rule", "")
        seen["province"] = "440000"
        seen["by_province"] = await choose(browser, "flag-province", seen["province"])
        await choose(browser, "flag-province", "")
        person = [f for f in demo.offline if f["rule"] != "HIGH_REVERSAL_RATE"]
        seen["confirmed"], seen["dismissed"] = person[0]["flag_id"], person[-1]["flag_id"]
        await review(browser, seen["confirmed"], "confirmed", "same patient, two wards")
        await review(browser, seen["dismissed"], "dismissed", "a planned transfer")
        await browser.call("Page.reload")
        await browser.wait_for("!!document.getElementById('flags')")
        seen["reloaded"] = await settle(browser, seen["dismissed"])
    finally:
        await browser.close()
    return seen


def queue_api(demo: Demo) -> Json:
    request = urllib.request.Request(
        f"{demo.url}/dashboard/api/flags", headers={"Authorization": f"Bearer {demo.token}"}
    )
    with urllib.request.urlopen(request, timeout=30) as reply:
        answer: Json = json.loads(reply.read())
    return answer


def test_the_queue_shows_the_planted_cases_and_keeps_reviews(
    chromium: str,  # noqa: F811
    demo: Demo,
    tmp_path: Path,
) -> None:
    started = datetime.now(UTC)
    seen = asyncio.run(walk(chromium, demo, tmp_path / "profile"))
    assert seen["before_signin"] == "sign in to see the flags"

    # Every planted rule is in the queue, the stream's flags being the offline ones.
    offline = {f["flag_id"]: f for f in demo.offline}
    assert {f["rule"] for f in demo.offline} == set(RULES)
    stored = queue_api(demo)
    assert {item["flag"]["flag_id"] for item in stored["flags"]} == set(offline)
    assert stored["counts"]["by_rule"] == {
        rule: sum(f["rule"] == rule for f in demo.offline) for rule in RULES
    }
    shown = seen["all"]
    assert {row["rule"] for row in shown} == set(RULES)
    assert len(shown) == len(offline)

    # Filtered by rule: only that rule, every flag of it; each pair side by side.
    for rule, rows in seen["by_rule"].items():
        flags = [f for f in demo.offline if f["rule"] == rule]
        assert {row["rule"] for row in rows} == {rule}
        assert len(rows) == len(flags)
        if rule == "HIGH_REVERSAL_RATE":
            f = flags[0]
            e = f["evidence"]
            hospital = f"{f['hospital_id']}: {e['reversals']} of {e['settlements']} reversed"
            assert hospital in [row["who"] for row in rows]
            continue
        pairs = {(tuple(row["earlier"]), tuple(row["later"])) for row in rows}
        for f in flags:
            e = f["evidence"]
            assert (tuple(side_text(e["earlier"])), tuple(side_text(e["later"]))) in pairs

    # Filtered by province: exactly the flags that involve it.
    province = seen["province"]
    involved = [f for f in demo.offline if province in {*f["payers"], *f["payees"]}]
    assert involved
    assert len(seen["by_province"]) == len(involved)

    # Reviews persist with who and when: in the store, and on the page loaded again.
    reloaded = {row["buttons"][0].split("|")[0]: row for row in seen["reloaded"]}
    for flag_id, status, note in (
        (seen["confirmed"], "confirmed", "same patient, two wards"),
        (seen["dismissed"], "dismissed", "a planned transfer"),
    ):
        row = reloaded[flag_id]
        assert row["review"][0] == f"{status} by alice"
        at = datetime.fromisoformat(row["review"][1].replace(" ", "T") + "+00:00")
        assert started - timedelta(seconds=5) <= at <= datetime.now(UTC) + timedelta(seconds=5)
        item = next(i for i in queue_api(demo)["flags"] if i["flag"]["flag_id"] == flag_id)
        assert item["review"]["status"] == status and item["review"]["note"] == note
        assert item["review"]["operator"] == "alice"
    engine = db.open_engine(demo.db_url)
    with engine.connect() as conn:
        rows = conn.execute(flag_reviews.select().order_by(flag_reviews.c.id)).mappings().all()
    engine.dispose()
    assert [(r["flag_id"], r["status"], r["operator"]) for r in rows] == [
        (seen["confirmed"], "confirmed", "alice"),
        (seen["dismissed"], "dismissed", "alice"),
    ]
