"""A dbt ``profiles.yml`` written at run time from credentials a flow loaded (a Block).

dbt reads warehouse credentials from ``profiles.yml`` (docs/dbt-profiles.md). With
``env_var()`` in a profile kept in the image, nothing needs writing; this module is for
the other way, credentials held in a Block: :func:`temporary_profiles_dir` writes one
profile with one target into a fresh private directory, yields the directory to pass as
``--profiles-dir``, and deletes it afterwards.

What it must respect:

* The file holds secrets: it is created ``0600`` (in a ``0700`` directory, made by
  :func:`tempfile.mkdtemp`) before anything is written to it, and removed when the
  ``with`` block ends, failing or not. Its content is never logged.
* ``SecretStr`` values are unwrapped only into the file; everything else must be a plain
  YAML scalar, list or mapping.
* dbt renders every string of a profile as Jinja. A value containing ``{{``, ``{%`` or
  ``{#`` would be rendered, not taken as written (and a secret could leak into an error
  message): such a value is refused, naming the key and the fix.
* The file is JSON, which is YAML (dbt loads it with ``yaml.safe_load``): no YAML writer,
  and no quoting rule to get wrong for a password full of ``:`` and ``#``.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

__all__ = ["temporary_profiles_dir", "write_profiles_yml"]

_JINJA = ("{{", "{%", "{#")


def _plain(value: Any, where: str) -> Any:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
        if any(mark in value for mark in _JINJA):
            raise ValueError(
                f"the secret value of {where} contains Jinja delimiters ({{{{, {{% or {{#), "
                "which dbt would render: pass it through an environment variable named "
                f"DBT_ENV_SECRET_... and write {where} as \"{{{{ env_var('DBT_ENV_SECRET_...') "
                "}}\" instead")
        return value
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if value is None or isinstance(value, bool | int | float | str):
        return value  # a plain string with Jinja is meant to be rendered: env_var()
    raise TypeError(f"{where} is a {type(value).__name__}; a profile holds strings, numbers, "
                    "booleans, lists and mappings (and SecretStr, written as its value)")


def write_profiles_yml(directory: Path, profile: str, target_name: str,
                       target: Mapping[str, Any]) -> Path:
    """Write ``<directory>/profiles.yml`` (mode 0600) with ``profile`` whose only output
    is ``target_name``: ``target`` (dbt's keys for the adapter: ``type``, ``account``,
    ``password``...); returns the file's path."""
    if "type" not in target:
        raise ValueError(f"target {target_name!r} of profile {profile!r} has no 'type' (the "
                         "adapter: snowflake, postgres, bigquery, duckdb...)")
    document = {profile: {"target": target_name,
                          "outputs": {target_name: _plain(target, f"{profile}.{target_name}")}}}
    path = directory / "profiles.yml"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        json.dump(document, file, indent=2)
        file.write("\n")
    return path


@contextmanager
def temporary_profiles_dir(profile: str, target_name: str,
                           target: Mapping[str, Any]) -> Iterator[Path]:
    """A private directory holding ``profiles.yml`` for one target (see
    :func:`write_profiles_yml`), removed with its file when the ``with`` block ends::

        creds = SnowflakeTarget.load("snowflake-dbt")
        with temporary_profiles_dir("shop", "prod", creds.target()) as profiles_dir:
            dbt build --profiles-dir <profiles_dir>
    """
    directory = Path(tempfile.mkdtemp(prefix="headwater-dbt-profiles-"))
    try:
        write_profiles_yml(directory, profile, target_name, target)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
