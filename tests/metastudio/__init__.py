"""Tests of ``bot/metastudio``, one module per job, as in the package."""
