"""Results built without validation, and serialised without pydantic, are the same as before.

Every result of the sample bundles (with and without tiers) and of a generated bundle: each
object `build` made equals the one pricing makes when it validates every result instead, and
`result_json` equals `model_dump(exclude_none=True)` down to the order of the keys.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import orjson
import pytest
from support.paths import CASES

from clearing.core import pricing
from clearing.core.models.results import Invalid, Priced, Rejected, Result, build, result_json
from clearing.core.pricer import Pricer
from clearing.ops.bundle import event_lines, load_refdata
from clearing.ops.simulate.bundle import generate_bundle

R = TypeVar("R")


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    bundle = tmp_path_factory.mktemp("results") / "bundle"
    generate_bundle(bundle, events=3000, seed=11)
    return bundle


def results_of(bundle: Path) -> list[Result]:
    pricer = Pricer(load_refdata(bundle / "refdata"))
    return [pricer.process(raw) for raw in event_lines(bundle / "events.jsonl")]


def validated(model: type[R], /, **given: Any) -> R:
    return model(**given)


@pytest.mark.parametrize("which", ["sample", "tiers", "generated"])
def test_built_results_equal_validated_ones(
    which: str, generated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundle = {"sample": CASES, "tiers": CASES / "tiers", "generated": generated}[which]
    built = results_of(bundle)
    with monkeypatch.context() as patch:
        patch.setattr(pricing, "build", validated)
        reference = results_of(bundle)
    assert len(built) == len(reference)
    statuses: set[str] = set()
    for result, expected in zip(built, reference, strict=True):
        statuses.add(result.status)
        assert type(result) is type(expected)
        assert result == expected
        assert list(result.__dict__.items()) == list(expected.__dict__.items())
        assert result.model_fields_set == expected.model_fields_set
        assert result.__pydantic_private__ == expected.__pydantic_private__
        assert result.__pydantic_extra__ == expected.__pydantic_extra__

        dumped = expected.model_dump(exclude_none=True)
        fast = result_json(result)
        assert fast == dumped
        assert orjson.dumps(fast) == orjson.dumps(dumped)  # key order too
        assert expected.model_dump_json(exclude_none=True).encode() == orjson.dumps(fast)
    assert {"priced", "rejected", "invalid", "filed"} <= statuses


def test_result_json_of_each_shape() -> None:
    with_tiers = build(
        Priced,
        settlement_id="S1",
        period="2026-01",
        payer="110000",
        payee="310000",
        hospital_id="H1",
        filed=True,
        total_fen=100,
        self_pay_fen=0,
        pre_self_pay_fen=0,
        eligible_fen=100,
        deductible_fen=0,
        fund_pay_fen=70,
        critical_pay_fen=0,
        assistance_pay_fen=0,
        due_fen=70,
        personal_pay_fen=30,
        cap_reached=False,
        assistance_class=None,
    )
    assert list(result_json(with_tiers))[-1] == "assistance_class"
    assert result_json(with_tiers)["assistance_class"] is None
    rejected = build(Rejected, settlement_id="S1", reasons=["NO_POLICY"])
    out = result_json(rejected)
    assert out == rejected.model_dump(exclude_none=True)
    assert out["reasons"] is not rejected.reasons  # a copy, as model_dump gives
    assert result_json(Invalid(error="x", line=3)) == {"line": 3, "status": "invalid", "error": "x"}
