"""The Grafana dashboard, its provisioning and Prometheus' scrape configuration agree with what
the workers export and with docker-compose.yml."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from support.dashboard import (
    DASHBOARDS,
    StandInLag,
    dashboard_for,
    make_sample_db,
    metric_names,
    panels,
)
from support.paths import ROOT

from clearing import metrics
from clearing.dashboard import collectors

PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning" / "dashboards"
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    """Every sample name the default registry (the one `/metrics` serves) can expose: the
    stream's counters and histograms, and the dashboard's collectors over the sample ledger."""
    dashboard = dashboard_for(make_sample_db(tmp_path_factory.mktemp("grafana")))
    dashboard.ledger.value = dashboard._load_ledger()
    dashboard.lag.value = StandInLag().read()
    collectors.register(dashboard)
    try:
        body, _ = metrics.render()
    finally:
        collectors.unregister()
    names = set()
    for family in text_string_to_metric_families(body.decode()):
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.add(f"{family.name}_total")
        if family.type == "histogram":
            names.update(family.name + suffix for suffix in HISTOGRAM_SUFFIXES)
    yield names


def test_every_panel_queries_metrics_the_workers_export(exported: set[str]) -> None:
    found = panels()
    assert found, "no dashboard under deploy/grafana/dashboards"
    for panel in found:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, (panel["title"], target["expr"])
            missing = {n for n in names if n not in exported}
            assert not missing, f"panel {panel['title']!r} queries unknown metrics {missing}"


def test_the_dashboard_has_the_operators_panels() -> None:
    queried = {name for panel in panels() for t in panel["targets"] for name in
               metric_names(t["expr"])}  # fmt: skip
    for wanted in (
        "clearing_events_in_total",
        "clearing_results_total",
        "clearing_rejections_total",
        "clearing_dead_letters_total",
        "clearing_result_latency_seconds_bucket",
        "clearing_consumer_lag",
        "clearing_obligation_fund_pay_fen",
        "clearing_obligation_due_fen",
        "clearing_period_payer_fen",
        "clearing_prepayment_usage_ratio",
        "clearing_period_state",
    ):
        assert wanted in queried, wanted
    quantiles = [t["expr"] for p in panels() for t in p["targets"] if "histogram_quantile" in
                 t["expr"]]  # fmt: skip
    assert [q.split(",")[0] for q in quantiles] == [
        f"histogram_quantile({q}" for q in ("0.5", "0.95", "0.99")
    ]


def test_panels_use_the_provisioned_datasource_and_fit_the_grid() -> None:
    for path in DASHBOARDS.glob("*.json"):
        document = json.loads(path.read_text())
        assert document["uid"] and document["title"]
        variables = {v["name"]: v for v in document["templating"]["list"]}
        assert variables["datasource"]["query"] == "prometheus"
    ids = [panel["id"] for panel in panels()]
    assert len(ids) == len(set(ids))
    for panel in panels():
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]


def test_grafana_finds_the_dashboards_where_compose_mounts_them() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = {}
    for volume in compose["services"]["grafana"]["volumes"]:
        source, target = volume.split(":")[:2]
        mounts[target.rstrip("/")] = source
    for path in PROVISIONING.glob("*.yml"):
        for provider in yaml.safe_load(path.read_text())["providers"]:
            target = provider["options"]["path"].rstrip("/")
            assert mounts.get(target) == "./deploy/grafana/dashboards", (
                f"docker-compose.yml must mount ./deploy/grafana/dashboards at {target} "
                "in the grafana service"
            )
    provisioning = mounts.get("/etc/grafana/provisioning")
    assert provisioning == "./deploy/grafana/provisioning"


def test_prometheus_scrapes_the_workers_and_the_api_on_6066() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = set()
    for job in config["scrape_configs"]:
        assert job.get("metrics_path", "/metrics") == "/metrics"
        for static in job.get("static_configs", []):
            targets.update(static["targets"])
        for dns in job.get("dns_sd_configs", []):
            targets.update(f"{name}:{dns['port']}" for name in dns["names"])
    assert targets == {"worker:6066", "api:6066"}
    assert {"worker", "api"} <= set(compose["services"])
