"""A run's inputs: the Blocks and Variables its Deployment declares, resolved for its pod.

``Deployment.spec.blocks`` names the blocks a flow loads; each may nest others
(``Block.spec.blockRefs``), which come along. :func:`resolve_blocks` walks them and
either returns the run's :class:`RunInputs` — every block's document (what
``HEADWATER_BLOCKS`` carries) and, for each secret field, the Secret key the pod gets as
a file ``<HEADWATER_BLOCKS_DIR>/<block>/<field>`` — or a :class:`Wait`: why the run
cannot start yet (reason ``BlockNotFound``, ``BlockSecretNotFound`` or ``InvalidBlock``),
a message naming the block, the field and the fix, and the objects whose appearance or
change wakes the run. :func:`check_secrets` checks that each referenced Secret exists and
holds the key; it is given only the Secrets' *key names*, never their values.
:func:`resolve_variables` reads the declared Variables (a missing one is left out:
``Variable.get`` then returns its default, as in Prefect).

:func:`pod_inputs` turns :class:`RunInputs` into the container's environment variables,
its projected volume and the mount (what ``render`` adds to the pod).

What it must respect: no secret value ever passes through here (documents hold secret
field *names*; the pod's kubelet reads the values); the walk is deterministic (the same
objects give the same pod, so pod creation stays idempotent); a cycle of nested blocks
is an error naming it, not a loop.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from headwater import contract

from headwater_operator import reasons
from headwater_operator.api import Block, InvalidResourceError, Variable, variable_object_name

VOLUME_NAME: Final = "headwater-blocks"
"""The flow-run pod's volume of block secret fields."""
FILE_MODE: Final = 0o440
"""Secret files are readable by their owner and group only: the pod's ``fsGroup`` (see
:func:`pod_inputs`)."""
DEFAULT_FS_GROUP: Final = 65532
"""The ``fsGroup`` a pod with block secret files gets when its runTemplate sets none (and
no ``runAsGroup``): the files are group-owned by it and the flow's process is a member,
whatever user the image runs as. docs/blocks-kubernetes.md, "Secret files"."""


@dataclass(frozen=True)
class SecretFile:
    """One secret field of one block: the Secret key that becomes its file in the pod."""

    block: str
    field: str
    secret: str
    key: str

    @property
    def path(self) -> str:
        """The file's path under ``HEADWATER_BLOCKS_DIR``: ``<block>/<field>``."""
        return f"{self.block}/{self.field}"


@dataclass(frozen=True)
class RunInputs:
    """What a run's pod is given: block documents, secret files and variable values."""

    documents: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Block name → its document (``{name, type, data, blocks, secrets}``)."""
    secret_files: tuple[SecretFile, ...] = ()
    variables: Mapping[str, Any] = field(default_factory=dict)
    """Variable name → value, for the declared Variables that exist."""
    declares_blocks: bool = False
    declares_variables: bool = False


NO_INPUTS: Final = RunInputs()


@dataclass(frozen=True)
class Wait:
    """Why a run cannot start yet, and what it waits for."""

    reason: str
    message: str
    blocks: frozenset[str] = frozenset()
    """Blocks whose appearance or change wakes the run."""
    secrets: frozenset[str] = frozenset()
    """Secrets whose appearance or change wakes the run."""


def block_document(block: Block) -> dict[str, Any]:
    """The block document of a Block (docs/blocks.md): what every store holds."""
    spec = block.spec
    return {"name": block.metadata.name or "", "type": spec.type, "data": dict(spec.data),
            "blocks": {name: ref.name for name, ref in sorted(spec.block_refs.items())},
            "secrets": sorted(spec.secret_refs)}


BlockLookup = Callable[[str], Awaitable[Mapping[str, Any] | None]]
"""``await lookup(name)``: the body of Block ``name`` in the run's namespace, or None."""
ParseBlock = Callable[[Mapping[str, Any]], Block]
"""Parse a Block body (raises :class:`InvalidResourceError`)."""


def _via(path: Sequence[tuple[str, str]], deployment: str) -> str:
    """Where a block was named: ``Deployment etl spec.blocks`` or ``Block warehouse
    spec.blockRefs.connector``."""
    if not path:
        return f"Deployment {deployment} spec.blocks"
    parent, field_name = path[-1]
    return f"Block {parent} spec.blockRefs.{field_name}"


async def resolve_blocks(roots: Sequence[str], lookup: BlockLookup, parse: ParseBlock, *,
                         namespace: str, deployment: str) -> tuple[list[Block], Wait | None]:
    """The declared blocks and every block they nest, depth first in declaration order;
    or the :class:`Wait` for the first one missing, invalid or nesting itself."""
    found: dict[str, Block] = {}
    seen: set[str] = set()

    async def visit(name: str, path: tuple[tuple[str, str], ...]) -> Wait | None:
        chain = [parent for parent, _ in path]
        if name in chain:
            cycle = " → ".join([*chain[chain.index(name):], name])
            return Wait(reasons.INVALID_BLOCK, (
                f"Block {namespace}/{name} nests itself ({cycle}, spec.blockRefs); a block "
                "cannot contain itself: remove the cycle; the run starts when it is gone"),
                blocks=frozenset(chain))
        if name in seen:
            return None
        seen.add(name)
        body = await lookup(name)
        if body is None:
            return Wait(reasons.BLOCK_NOT_FOUND, (
                f"Block {namespace}/{name} ({_via(path, deployment)}) does not exist; create "
                "it (`headwater block create`, `kubectl apply`, or `block.save()` with "
                "HEADWATER_BLOCK_STORE=kubernetes) or fix the name; the run starts when it "
                "exists"), blocks=frozenset({name, *chain}))
        try:
            block = parse(body)
        except InvalidResourceError as exc:
            return Wait(reasons.INVALID_BLOCK, (
                f"Block {namespace}/{name} ({_via(path, deployment)}) is invalid: "
                f"{'; '.join(exc.errors)}; fix it, and the run starts"),
                blocks=frozenset({name, *chain}))
        found[name] = block
        for field_name, ref in sorted(block.spec.block_refs.items()):
            wait = await visit(ref.name, (*path, (name, field_name)))
            if wait is not None:
                return wait
        return None

    for root in roots:
        wait = await visit(root, ())
        if wait is not None:
            return [], wait
    return list(found.values()), None


def secret_files(blocks: Sequence[Block]) -> tuple[SecretFile, ...]:
    """Every secret field of ``blocks``, in a stable order."""
    return tuple(SecretFile(block.metadata.name or "", name, ref.name, ref.key)
                 for block in blocks for name, ref in sorted(block.spec.secret_refs.items()))


def check_secrets(files: Sequence[SecretFile], keys: Mapping[str, Collection[str] | None], *,
                  namespace: str) -> Wait | None:
    """The :class:`Wait` for the first secret field whose Secret (``keys[name]`` None) or
    key is missing; ``keys`` maps each referenced Secret to its data's key names."""
    for file in files:
        present = keys.get(file.secret)
        where = f"Block {file.block} spec.secretRefs.{file.field}"
        if present is None:
            return Wait(reasons.BLOCK_SECRET_NOT_FOUND, (
                f"Secret {namespace}/{file.secret} ({where}) does not exist; create it "
                f"with the key {file.key!r} (`headwater block create` makes it, as do "
                "external-secrets and sealed-secrets) or fix the reference; the run starts "
                "when it exists"), blocks=frozenset({file.block}),
                secrets=frozenset({file.secret}))
        if file.key not in present:
            return Wait(reasons.BLOCK_SECRET_NOT_FOUND, (
                f"Secret {namespace}/{file.secret} has no key {file.key!r} ({where}); add "
                f"the key to the Secret or fix spec.secretRefs.{file.field}.key; the run "
                "starts when it is there"), blocks=frozenset({file.block}),
                secrets=frozenset({file.secret}))
    return None


def resolve_variables(names: Sequence[str],
                      bodies: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Any]:
    """The values of the declared Variables that exist and are valid, by name.

    ``bodies`` maps each object name (:func:`variable_object_name` of a variable's name)
    to the Variable object of that name, or None. An object whose ``spec.name`` names
    another variable, or that does not parse, counts as missing: only the variable
    asked for is ever handed over.
    """
    values: dict[str, Any] = {}
    for name in names:
        body = bodies.get(variable_object_name(name))
        if body is None:
            continue
        try:
            variable = Variable.model_validate(dict(body))
        except ValueError:
            continue
        if variable.variable_name == name:
            values[name] = variable.spec.value
    return values


def pod_inputs(inputs: RunInputs) -> tuple[list[dict[str, Any]], dict[str, Any] | None,
                                           dict[str, Any] | None]:
    """The container's env vars, the pod's volume and the container's mount for
    ``inputs`` (the volume and mount are None without secret files).

    The env vars are set when the Deployment declares blocks (or variables), even with
    none found, so the SDK's ``auto`` store knows it runs in a flow-run pod.
    """
    env: list[dict[str, Any]] = []
    if inputs.declares_blocks:
        env.append({"name": contract.ENV_BLOCKS,
                    "value": json.dumps(inputs.documents, sort_keys=True,
                                        separators=(",", ":"))})
        env.append({"name": contract.ENV_BLOCKS_DIR, "value": contract.BLOCKS_DIR_DEFAULT})
    if inputs.declares_variables:
        env.append({"name": contract.ENV_VARIABLES,
                    "value": json.dumps(inputs.variables, sort_keys=True,
                                        separators=(",", ":"))})
    if not inputs.secret_files:
        return env, None, None
    sources: dict[str, list[dict[str, str]]] = {}
    for file in inputs.secret_files:
        sources.setdefault(file.secret, []).append({"key": file.key, "path": file.path})
    volume = {"name": VOLUME_NAME, "projected": {
        "defaultMode": FILE_MODE,
        "sources": [{"secret": {"name": name, "items": items}}
                    for name, items in sources.items()]}}
    mount = {"name": VOLUME_NAME, "mountPath": contract.BLOCKS_DIR_DEFAULT, "readOnly": True}
    return env, volume, mount


def fs_group_for(pod_security_context: Mapping[str, Any]) -> dict[str, Any]:
    """What a pod with block secret files adds to its security context: an ``fsGroup``
    (so the 0440 files are readable by the flow's process, whatever its user) when the
    runTemplate sets none — its ``runAsGroup``, else :data:`DEFAULT_FS_GROUP`."""
    if pod_security_context.get("fsGroup") is not None:
        return {}
    group = pod_security_context.get("runAsGroup")
    return {"fsGroup": group if isinstance(group, int) else DEFAULT_FS_GROUP}
