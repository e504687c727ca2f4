"""Prometheus metrics, served at ``GET /metrics``."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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
