"""The use cases: what a command, a button, App Home or an event does, each given its
collaborators explicitly by ``bot.app.Runtime``.

May import ``bot.aio``, ``bot.config``, ``bot.messages``, ``bot.db``, ``bot.metastudio``, ``bot.followups``
and ``bot.slack``; never ``handlers``, ``bot.app`` or the dev tools.
"""
