"""Blocks at Prefect's import paths: :mod:`headwater.blocks.core` (``Block``),
:mod:`headwater.blocks.system` (``Secret``, ``JSON``, ``String``, ``DateTime``) and
:mod:`headwater.blocks.stores` (where blocks and variables are kept). docs/blocks.md."""
