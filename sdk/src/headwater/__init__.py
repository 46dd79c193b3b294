"""Headwater SDK: Prefect-style ``@flow``/``@task`` engine."""

__version__ = "0.1.0"
