"""Prefect-compatible import paths for blocks (``from headwater.blocks.system import Secret``)."""
