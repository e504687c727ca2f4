"""taskbot: MetaStudio import/export tasks in Slack."""

__version__ = "0.1.0"
