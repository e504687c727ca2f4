"""Prometheus metrics, served at ``GET /metrics``."""

from __future__ import annotations

import os
import socket
from typing import Final

from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

COMMANDS = Counter(
    "taskbot_commands_total", "Slash commands handled, by subcommand and outcome.", ["command", "outcome"]
)
METASTUDIO_CALLS = Counter(
    "taskbot_metastudio_calls_total",
    "MetaStudio HTTP calls, by operation and outcome.",
    ["operation", "outcome"],
)
METASTUDIO_LATENCY = Histogram(
    "taskbot_metastudio_call_seconds",
    "Latency of MetaStudio HTTP calls (each attempt), by operation.",
    ["operation"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
SLACK_API_ERRORS = Counter(
    "taskbot_slack_api_errors_total",
    "Slack Web API calls that failed, by method and error.",
    ["method", "error"],
)

# Several replicas (docs/operations.md, "Running several replicas"): each labels its own series with its
# replica id, so one dashboard shows how the shards and the polls are spread.
SHARDS_OWNED = Gauge("taskbot_shards_owned", "Shards this replica holds the lease of.", ["replica"])
LEASE_RENEWALS = Counter(
    "taskbot_lease_renewals_total", "Heartbeats that renewed this replica's leases.", ["replica"]
)
LEASE_TAKEOVERS = Counter(
    "taskbot_lease_takeovers_total",
    "Shards this replica took over after their lease expired or was released.",
    ["replica"],
)
POLLS = Counter("taskbot_polls_total", "MetaStudio task polls made by this replica.", ["replica"])
DB_STATEMENTS = Counter(
    "taskbot_db_statements_total",
    "SQL statements this replica sent to its database (BEGIN, COMMIT and pool pings not counted).",
    ["replica"],
)


def replica_id() -> str:
    """This process's name in the fleet: TASKBOT_REPLICA_ID, else the host name and pid."""
    return os.environ.get("TASKBOT_REPLICA_ID") or f"{socket.gethostname()}-{os.getpid()}"


REPLICA: Final = replica_id()

# Present (at zero) from the start, so a dashboard and a probe see the series before the first event.
for _metric in (SHARDS_OWNED, LEASE_RENEWALS, LEASE_TAKEOVERS, POLLS, DB_STATEMENTS):
    _metric.labels(REPLICA)


def count_statements(engine: AsyncEngine) -> None:
    """Count every statement ``engine`` executes in ``taskbot_db_statements_total`` (a few µs each)."""
    statements = DB_STATEMENTS.labels(REPLICA)

    def counted(*_: object) -> None:
        statements.inc()

    event.listen(engine.sync_engine, "before_cursor_execute", counted)
