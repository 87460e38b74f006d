"""The suite's command-line option and collection hooks; the fixtures live in tests/fixtures/.

Fixtures come one module per external service (fixtures/kafka.py, fixtures/postgres.py, ...),
helpers the tests import in tests/support/ (`pythonpath = ["tests"]` in pyproject.toml). A
missing service skips its tests on a developer's machine but fails them under CI=true
(support/services.py: `unavailable`): a green CI run must mean the integration tests really
ran. Add new services as new fixture modules, listed below.
"""

from __future__ import annotations

import pytest

# The helpers assert too (support/stream.py's verify_run): rewrite them for pytest's messages.
pytest.register_assert_rewrite("support")

# In dependency order, so that each is first imported (and assertion-rewritten) as a plugin.
pytest_plugins = [
    "fixtures.kafka",
    "fixtures.postgres",
    "fixtures.ledger",
    "fixtures.stream",
    "fixtures.api",
]


# --------------------------------------------------------------------------------------------
# The long suites — `pytest --full`
#
# Tests marked `slow` (the full fault suite: 100,000-event runs with many crashes) run only
# with `--full`. Without it they are deselected by choice, not for want of a service, so this
# skip holds under CI=true too: CI runs the short versions of the same checks.
# --------------------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--full", action="store_true", default=False, help="also run the tests marked slow"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--full"):
        return
    skip = pytest.mark.skip(reason="long suite: run with --full")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
