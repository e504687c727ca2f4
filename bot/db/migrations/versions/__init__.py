"""The revisions, one module each, chained by ``down_revision``; each states its DDL and never changes."""
