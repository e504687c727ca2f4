"""The Slack side: origins and replies, clients and token rotation, delivery, the ``Poster``
used by the follow-ups, locale resolution, and the Block Kit builders (cards, alerts, home).

May import ``bot.config``, ``bot.messages``, ``bot.metrics``, ``bot.db`` records and
``bot.metastudio`` models; never the follow-ups, services, handlers or dev tools.
"""
