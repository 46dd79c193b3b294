"""Prefect's ``prefect.runner`` import path: only :mod:`headwater.runner.storage`."""
