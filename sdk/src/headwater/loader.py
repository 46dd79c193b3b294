"""Load a flow from an entrypoint: ``pkg.module:function`` or ``path/to/file.py:function``."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from headwater.exceptions import EntrypointError
from headwater.flows import Flow


def split_entrypoint(entrypoint: str) -> tuple[str, str]:
    """``(module or path, attribute)``; raises :class:`EntrypointError` if malformed."""
    target, sep, attr = entrypoint.rpartition(":")
    if not sep or not target or not attr or not attr.replace(".", "_").isidentifier():
        raise EntrypointError(
            f"entrypoint {entrypoint!r} is malformed: use 'pkg.module:function' or "
            "'path/to/file.py:function'"
        )
    return target, attr


def _load_file(path: Path) -> Any:
    if not path.is_file():
        raise EntrypointError(f"entrypoint file {str(path)!r} does not exist "
                              f"(working directory: {Path.cwd()})")
    # The flow's own directory goes first on sys.path so its sibling modules import.
    sys.path.insert(0, str(path.parent.resolve()))
    module_name = f"__headwater_flow_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise EntrypointError(f"cannot load {str(path)!r} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def load_flow(entrypoint: str) -> Flow[..., Any]:
    """Import the entrypoint and return its flow (a plain function is wrapped in ``@flow``)."""
    target, attr = split_entrypoint(entrypoint)
    if target.endswith(".py") or "/" in target:
        module = _load_file(Path(target))
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as exc:
            raise EntrypointError(
                f"entrypoint module {target!r} cannot be imported ({exc}); check the "
                "image contains it and the name is spelled as in 'import'"
            ) from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise EntrypointError(
                f"entrypoint {entrypoint!r}: {target!r} has no attribute {part!r}"
            ) from None
    if isinstance(obj, Flow):
        return obj
    if callable(obj):
        return Flow(obj)
    raise EntrypointError(f"entrypoint {entrypoint!r} is a {type(obj).__name__}, not a flow")
