"""``Secret`` at Prefect's import path."""

from headwater.secrets import Secret

__all__ = ["Secret"]
