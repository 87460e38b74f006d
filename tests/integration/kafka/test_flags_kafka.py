"""Fund-safety monitoring on the real broker: the stream raises exactly `clearing flags`' flags.

A bundle with every rule planted (`support.flag_bundle`) goes through a worker; its periods are
then closed through `clearing.ledger.cycle` (which raises HIGH_REVERSAL_RATE). The flags on
`<prefix>.flags` must equal `clearing flags` on the same file, and each province's feed must
carry exactly the flags that involve it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from support.flag_bundle import write_flag_bundle
from support.stream import Pipeline

from clearing.ledger import cycle
from clearing.ledger.store import Ledger
from clearing.ops.collect import read_all
from clearing.topics import PROVINCES

pytestmark = pytest.mark.kafka


def offline_flags(refdata: Path, events: Path) -> list[bytes]:
    out = subprocess.run(
        [sys.executable, "-m", "clearing.cli", "flags", "--refdata", str(refdata), str(events)],
        check=True,
        capture_output=True,
    ).stdout
    return out.splitlines()


def test_the_stream_raises_the_offline_flags(kafka_bootstrap: str, tmp_path: Path) -> None:
    refdata, events = write_flag_bundle(tmp_path / "bundle")
    lines = events.read_bytes().splitlines()
    pipeline = Pipeline(kafka_bootstrap, tmp_path / "run", batch_size=7)
    try:
        pipeline.create(refdata)
        pipeline.start(1)
        pipeline.publish_lines(enumerate(lines, start=1))
        assert pipeline.collect(len(lines)).complete
        with (
            Ledger(pipeline.db_url) as ledger,
            cycle.kafka_publisher(kafka_bootstrap, pipeline.topics) as publisher,
        ):
            for period in ("2026-01", "2026-02"):
                cycle.close(ledger, period, force=True, publisher=publisher, monitor=True)
        expected = offline_flags(refdata, events)
        assert {orjson.loads(f)["rule"] for f in expected} == {
            "OVERLAPPING_STAYS",
            "OUTPATIENT_DURING_STAY",
            "QUICK_READMISSION",
            "DUPLICATE_BILLING",
            "HIGH_REVERSAL_RATE",
        }
        published = [r.value for r in read_all(kafka_bootstrap, pipeline.topics.flags)]
        assert sorted(published) == sorted(expected)  # each once, and no other
        feeds = read_all(kafka_bootstrap, pipeline.topics.feeds())
        got: dict[str, list[bytes]] = {}
        for record in feeds:
            if orjson.loads(record.value).get("type") == "flag":
                got.setdefault(record.topic.rsplit(".", 1)[1], []).append(record.value)
        for province in PROVINCES:
            involving = [
                f
                for f in expected
                if province in {*orjson.loads(f)["payers"], *orjson.loads(f)["payees"]}
            ]
            assert sorted(got.get(province, [])) == sorted(involving), province
        assert set(got) == {"110000", "230000", "310000", "440000"}
    finally:
        pipeline.cleanup()
