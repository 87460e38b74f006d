"""Prometheus collectors for what the stream's own counters cannot say: consumer lag, the open
periods' fund flows, net positions, prepayment usage, period states.

They read the dashboard's cached figures (`Cached.peek()`), never the database or the broker:
`/metrics` is rendered on the worker's event loop. The figures are brought up to date before
each scrape by `Dashboard.refresh_for_scrape` (see `web.metrics_refresh`), off the loop.
Every family is always declared, with or without samples, so dashboards can rely on the names.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from clearing.core.jsonish import JSONMapping
from clearing.dashboard.service import Dashboard
from clearing.store.schema import PAYER_KINDS, PERIOD_STATES, SHARES

NAMES = (
    "clearing_consumer_lag",
    "clearing_consumer_committed_offset",
    "clearing_topic_end_offset",
    "clearing_obligation_fund_pay_fen",
    "clearing_obligation_critical_pay_fen",
    "clearing_obligation_assistance_pay_fen",
    "clearing_obligation_due_fen",
    "clearing_period_payer_fen",
    "clearing_obligation_settlements",
    "clearing_net_position_fen",
    "clearing_prepayment_fen",
    "clearing_prepayment_net_debit_fen",
    "clearing_prepayment_usage_ratio",
    "clearing_prepayment_over_share",
    "clearing_prepayment_alert_share_ratio",
    "clearing_period_state",
    "clearing_dashboard_source_up",
    "clearing_dashboard_source_age_seconds",
)


class DashboardCollector(Collector):
    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    def describe(self) -> list[Metric]:
        return []  # figures appear at scrape time; no check against other collectors' names

    def collect(self) -> Iterator[Metric]:
        yield from self._lag()
        yield from self._ledger()
        yield from self._sources()

    def _lag(self) -> Iterator[Metric]:
        group = self.dashboard.config.group
        lag = GaugeMetricFamily(
            "clearing_consumer_lag",
            "End offset minus the group's committed offset, per partition (from the broker)",
            labels=["group", "topic", "partition"],
        )
        committed = GaugeMetricFamily(
            "clearing_consumer_committed_offset",
            "The group's committed offset per partition (absent: nothing committed yet)",
            labels=["group", "topic", "partition"],
        )
        end = GaugeMetricFamily(
            "clearing_topic_end_offset",
            "End offset (next offset to be written) per partition",
            labels=["topic", "partition"],
        )
        for row in self.dashboard.lag.peek() or []:
            part = str(row.partition)
            lag.add_metric([group, row.topic, part], row.lag)
            end.add_metric([row.topic, part], row.end)
            if row.committed is not None:
                committed.add_metric([group, row.topic, part], row.committed)
        yield from (lag, committed, end)

    def _ledger(self) -> Iterator[Metric]:
        snapshot = self.dashboard.ledger.peek() or {}
        fund = GaugeMetricFamily(
            "clearing_obligation_fund_pay_fen",
            "Fund share owed by payer (home) to payee (treating) province so far, open periods",
            labels=["period", "payer", "payee"],
        )
        critical = GaugeMetricFamily(
            "clearing_obligation_critical_pay_fen",
            "Serious-illness insurance share owed by payer (home) to payee (treating) province so "
            "far, open periods",
            labels=["period", "payer", "payee"],
        )
        assistance = GaugeMetricFamily(
            "clearing_obligation_assistance_pay_fen",
            "Medical-assistance share owed by payer (home) to payee (treating) province so far, "
            "open periods",
            labels=["period", "payer", "payee"],
        )
        due = GaugeMetricFamily(
            "clearing_obligation_due_fen",
            "Due (fund + serious-illness + assistance shares) owed by payer (home) to payee "
            "(treating) province so far, open periods",
            labels=["period", "payer", "payee"],
        )
        by_kind = GaugeMetricFamily(
            "clearing_period_payer_fen",
            "National sum owed by each home-side payer kind (fund, critical, assistance) so far, "
            "open periods",
            labels=["period", "payer_kind"],
        )
        count = GaugeMetricFamily(
            "clearing_obligation_settlements",
            "Priced settlements of each province pair so far, open periods",
            labels=["period", "payer", "payee"],
        )
        for period, view in sorted((snapshot.get("open") or {}).items()):
            for ob in view["obligations"]:
                pair = [period, ob["payer"], ob["payee"]]
                fund.add_metric(pair, ob["fund_pay_fen"])
                critical.add_metric(pair, ob.get("critical_pay_fen", 0))
                assistance.add_metric(pair, ob.get("assistance_pay_fen", 0))
                due.add_metric(pair, ob.get("due_fen", ob["fund_pay_fen"]))
                count.add_metric(pair, ob["settlements"])
            totals = view["totals"]
            for kind in PAYER_KINDS:
                by_kind.add_metric([period, kind], totals.get(SHARES[kind], 0))
        yield from (fund, critical, assistance, due, by_kind, count)
        yield from self._prepayments(snapshot.get("prepayments"))
        states = GaugeMetricFamily(
            "clearing_period_state",
            "1 for the state each clearing period is in (open, closed, issued), else 0",
            labels=["period", "state"],
        )
        for row in snapshot.get("periods") or []:
            for name in PERIOD_STATES:
                states.add_metric([row["period"], name], 1 if row["state"] == name else 0)
        yield states

    def _prepayments(self, prepayments: JSONMapping | None) -> Iterator[Metric]:
        net = GaugeMetricFamily(
            "clearing_net_position_fen",
            "Running net position over the open periods (positive: the province receives)",
            labels=["province"],
        )
        balance = GaugeMetricFamily(
            "clearing_prepayment_fen", "Prepayment (预付金) balance", labels=["province"]
        )
        debit = GaugeMetricFamily(
            "clearing_prepayment_net_debit_fen",
            "Running net debit over the open periods (0 when the province is owed)",
            labels=["province"],
        )
        usage = GaugeMetricFamily(
            "clearing_prepayment_usage_ratio",
            "Net debit / prepayment (absent when there is no prepayment)",
            labels=["province"],
        )
        over = GaugeMetricFamily(
            "clearing_prepayment_over_share",
            "1 when the net debit is past the alert share of the prepayment",
            labels=["province"],
        )
        share = GaugeMetricFamily(
            "clearing_prepayment_alert_share_ratio",
            "Share of the prepayment past which a province raises an alert",
        )
        if prepayments:
            share.add_metric([], prepayments["alert_share_bp"] / 10_000)
            for row in prepayments["provinces"]:
                labels = [row["province"]]
                net.add_metric(labels, row["net_position_fen"])
                balance.add_metric(labels, row["prepayment_fen"])
                debit.add_metric(labels, row["net_debit_fen"])
                over.add_metric(labels, 1 if row["over"] else 0)
                if row["prepayment_fen"]:
                    usage.add_metric(labels, row["net_debit_fen"] / row["prepayment_fen"])
        yield from (net, balance, debit, usage, over, share)

    def _sources(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "clearing_dashboard_source_up",
            "1 when the last refresh of a source (ledger, kafka, rejections) succeeded",
            labels=["source"],
        )
        age = GaugeMetricFamily(
            "clearing_dashboard_source_age_seconds",
            "Seconds since a source was last read successfully",
            labels=["source"],
        )
        d = self.dashboard
        for cached in (d.ledger, d.lag, d.rejections):
            up.add_metric([cached.name], 1 if cached.status()["up"] else 0)
            seconds = cached.age()
            if seconds is not None:
                age.add_metric([cached.name], seconds)
        yield from (up, age)


_registered: dict[int, DashboardCollector] = {}


def register(dashboard: Dashboard, registry: CollectorRegistry = REGISTRY) -> DashboardCollector:
    """Adds the collector to `registry` (the default one `clearing.metrics.render` serves),
    replacing one registered earlier in this process."""
    unregister(registry)
    collector = DashboardCollector(dashboard)
    registry.register(collector)
    _registered[id(registry)] = collector
    return collector


def unregister(registry: CollectorRegistry = REGISTRY) -> None:
    old = _registered.pop(id(registry), None)
    if old is not None:
        registry.unregister(old)
