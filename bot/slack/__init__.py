"""The Slack side: origins and replies, clients and token rotation, delivery, the ``Poster``
used by the follow-ups, locale resolution, what people are told when MetaStudio fails
(``cloud_errors``), the Block Kit builders (cards, alerts, the App Home, the admin modals), and
``ids``, the one home of every id Slack sends back (what ``handlers`` listens on).

May import ``bot.aio``, ``bot.config``, ``bot.messages``, ``bot.metrics``, ``bot.db`` records and
``bot.metastudio`` models, errors and endpoint refusals; never the follow-ups, services,
handlers or dev tools.
"""
