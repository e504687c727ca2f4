"""Huawei Cloud MetaStudio: credentials and which source answers (``credential_chain``), regions
and endpoints (``regions``: the operator's and a workspace's), request signing, IAM
authentication, models, the typed error family, progress estimates and the async client
(``client``: calls and retries; ``transport``: how it reaches the network; ``responses``: what
an answer means).

The bottom domain layer: it imports only ``bot.aio``, ``bot.logs`` and ``bot.metrics`` of ours,
never settings, UI text, the database or Slack (``tests/test_layout.py``). Callers configure a
client and the chains with plain values (``bot.services.connections`` maps ``Settings`` onto
them) and turn its errors into sentences themselves (``bot.slack``).
"""
