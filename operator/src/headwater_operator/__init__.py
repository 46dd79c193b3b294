"""Headwater operator: API models, CRD generation, reconcilers, scheduling, metrics, CLI."""

__version__ = "0.1.0"
