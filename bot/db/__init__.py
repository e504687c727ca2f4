"""The database: one engine per process, the tables, their repositories and the migrations.

``base`` owns the engine, transactions and column types; ``followups``, ``feeds``,
``deliveries``, ``digests`` and ``workspaces`` own their tables and repositories; ``crypto``
encrypts secrets at rest; ``schema`` and ``migrations`` change the schema (Alembic); ``fleet``
and ``leases`` share state between replicas. May import ``bot.config``, ``bot.messages`` (which
languages exist), ``bot.logs``, ``bot.metastudio`` (credential types, regions) and ``bot.aio``
(the rate limiter it shares); never Slack, the follow-ups or services (``tests/test_layout.py``).
"""
