"""The database: one engine per process, the tables, their repositories and the migrations.

``base`` owns the engine, transactions and column types; ``followups`` and ``workspaces`` own
their tables and repositories; ``crypto`` encrypts secrets at rest; ``schema`` and
``migrations`` change the schema (Alembic). Imports only SQLAlchemy, Alembic, ``bot.config``,
``bot.logs`` and ``bot.metastudio``'s credential types; never Slack, the follow-ups or services.
"""
