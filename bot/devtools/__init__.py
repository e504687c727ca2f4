"""Dev tools: the MetaStudio simulator, the Slack stand-in, the demo, the playground, the renderer.

They serve ``taskbot demo``, ``taskbot playground``, ``taskbot simulator``, the tests and the
benchmarks. Runtime code (everything ``taskbot serve`` imports) never imports this package;
``tests/test_layout.py`` enforces it.
"""
