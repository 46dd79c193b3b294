"""Secrets injected from a Kubernetes Secret, with Prefect's ``Secret.load(name).get()``.

A Deployment's ``runTemplate`` maps Kubernetes Secrets into the flow-run container,
either as environment variables ``HEADWATER_SECRET_<NAME>`` (name upper-cased, ``-`` and
``.`` turned into ``_``) or as files under ``HEADWATER_SECRETS_DIR`` (default
``/var/run/headwater/secrets``), one file per key. The environment variable wins.

Every value loaded is remembered so that :func:`redact` can mask it: the log handler,
state messages and the run summary all pass through ``redact``, so a secret that ends
up in an exception message never reaches ``kubectl logs`` or ``FlowRun.status``.
"""

from __future__ import annotations

import os
import re
import threading
from typing import TYPE_CHECKING

from headwater import contract
from headwater.exceptions import MissingSecretError

if TYPE_CHECKING:
    from pathlib import Path

_MASK = "********"
_loaded: set[str] = set()
_pattern: re.Pattern[str] | None = None
_lock = threading.Lock()


def secret_env_var(name: str) -> str:
    """The environment variable that carries secret ``name``."""
    return contract.ENV_SECRET_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def secrets_dir() -> Path:
    """The directory where secret files are mounted."""
    from pathlib import Path

    return Path(os.environ.get(contract.ENV_SECRETS_DIR, contract.SECRETS_DIR_DEFAULT))


def _remember(value: str) -> None:
    global _pattern  # noqa: PLW0603 - read lock-free by redact()
    # Very short values would mask ordinary words in logs; they are not worth hiding.
    if len(value) < 4:
        return
    with _lock:
        _loaded.add(value)
        alternatives = sorted(_loaded, key=len, reverse=True)
        _pattern = re.compile("|".join(re.escape(v) for v in alternatives))


def redact(text: str) -> str:
    """Replace every loaded secret value in ``text`` with a mask."""
    pattern = _pattern
    if pattern is None:
        return text
    return pattern.sub(_MASK, text)


class Secret:
    """A named secret value; ``str()`` and ``repr()`` never show the value."""

    __slots__ = ("_value", "name")

    def __init__(self, name: str, value: str) -> None:
        self.name = name
        self._value = value

    @classmethod
    def load(cls, name: str) -> Secret:
        """Load secret ``name`` from its environment variable or mounted file.

        Raises :class:`MissingSecretError` naming both places looked at.
        """
        env_var = secret_env_var(name)
        value = os.environ.get(env_var)
        if value is None:
            path = secrets_dir() / name
            try:
                value = path.read_text(encoding="utf-8").rstrip("\n")
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise MissingSecretError(
                    f"Secret {name!r} not found: set environment variable {env_var} or "
                    f"mount a file at {path} (map the Kubernetes Secret into the flow-run "
                    "pod through the Deployment's runTemplate env/envFrom/volumes)."
                ) from None
        _remember(value)
        return cls(name, value)

    def get(self) -> str:
        """The secret value."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret(name={self.name!r}, value={_MASK!r})"

    __str__ = __repr__
