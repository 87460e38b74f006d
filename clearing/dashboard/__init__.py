"""The operators' dashboard: a page at `/` of the worker's web server, its JSON endpoints, and
Prometheus collectors for consumer lag, fund flows, prepayment usage and period states.

`install(app)` mounts it all on a faust app (see `web`); `create_app(config)` builds it on an
aiohttp app of its own; `clearing credentials add --kind operator NAME` makes a token for the
Close/Issue actions.
"""

from __future__ import annotations

from clearing.dashboard.config import DashboardConfig
from clearing.dashboard.web import create_app, install

__all__ = ["DashboardConfig", "create_app", "install"]
