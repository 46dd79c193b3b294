"""Secret values: injected ones, and the redaction of every secret value a run has seen.

``Secret`` (``Secret.load(name).get()``, Prefect's API) is the block in
:mod:`headwater.blocks.system`, importable from here too. When no block of that name
exists, ``Secret.load`` falls back to a value injected into the pod: a Deployment's
``runTemplate`` maps Kubernetes Secrets into the flow-run container, either as
environment variables ``HEADWATER_SECRET_<NAME>`` (name upper-cased, ``-`` and ``.``
turned into ``_``) or as files under ``HEADWATER_SECRETS_DIR`` (default
``/var/run/headwater/secrets``), one file per key. The environment variable wins.

Every secret value loaded (injected, or a block's ``SecretStr`` field) is remembered so
that :func:`redact` can mask it: the log handler, state messages, the run record and the
run summary all pass through ``redact``, so a secret that ends up in an exception
message never reaches ``kubectl logs`` or ``FlowRun.status``.

This module stays standard-library only: the logging module imports it on every start.
"""

from __future__ import annotations

import os
import re
import threading
from typing import TYPE_CHECKING, Any

from headwater import contract

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
    if len(value) < 4 or value in _loaded:
        return  # known values cost no recompile: a flow may load one block per task
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


def injected_secret(name: str) -> str | None:
    """Secret ``name`` from its environment variable or mounted file (the variable wins),
    remembered for :func:`redact`; ``None`` when neither is there."""
    value = os.environ.get(secret_env_var(name))
    if value is None:
        try:
            value = (secrets_dir() / name).read_text(encoding="utf-8").rstrip("\n")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
    _remember(value)
    return value


def injection_hint(name: str) -> str:
    """Where :func:`injected_secret` looks for ``name``, as a fix for an error message."""
    return (f"set environment variable {secret_env_var(name)} or mount a file at "
            f"{secrets_dir() / name} (map the Kubernetes Secret into the flow-run pod "
            "through the Deployment's runTemplate env/envFrom/volumes)")


def remember(value: str) -> None:
    """Mask ``value`` wherever :func:`redact` runs from now on (values under 4
    characters are not masked: they would hide ordinary words)."""
    _remember(value)


if TYPE_CHECKING:
    from headwater.blocks.system import Secret

__all__ = ["Secret", "injected_secret", "injection_hint", "redact", "remember",
           "secret_env_var", "secrets_dir"]


def __getattr__(name: str) -> Any:
    # ``Secret`` is the block in headwater.blocks.system (pydantic): importing it here at
    # module level would load pydantic with the logging module, on every pod start.
    if name == "Secret":
        from headwater.blocks.system import Secret

        return Secret
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
