"""Small helpers that several test modules share; each module here has one job.

- ``clock``: the one fake clock.
- ``cli``: the ``taskbot`` command as a real process (clean environment, free port, start, stop, run).
- ``forms``: the connection forms the tests save.
- ``wire``: what the MetaStudio client sent and got back, recorded by a TCP relay on loopback.
"""
