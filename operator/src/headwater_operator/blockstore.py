"""The ``kubernetes`` block and variable store: Blocks, their Secrets, and Variables.

The SDK's ``HEADWATER_BLOCK_STORE=kubernetes[:<namespace>]`` loads :func:`stores` through
the entry-point group ``headwater.stores`` (registered in operator/pyproject.toml), so
``Block.save``/``Block.load`` and ``Variable.get``/``set`` work against a cluster with the
user's kubeconfig (or, in a pod, its service account). The CLI's ``block`` and
``variable`` commands use the same classes.

How a block is kept (docs/blocks-kubernetes.md):

* the document in a ``Block`` object of the block's name: ``spec.type``, ``spec.data``,
  ``spec.blockRefs`` (nested blocks, by name) and ``spec.secretRefs``;
* the values of its secret fields in a Secret ``<name>-block`` (one key per field),
  labelled ``headwater.dev/block: <name>`` and owned by the Block, so deleting the
  Block deletes it. A Block written by hand (GitOps) may point ``secretRefs`` at any
  Secret: reading follows them; saving replaces them with ``<name>-block``.

A variable is kept in a ``Variable`` object (``spec.value``); its object name is
:func:`~headwater_operator.api.variable_object_name` of the variable's name, which keeps
names with ``_`` apart from those with ``-``.

What it must respect: a secret value is only ever in the Secret and in this process's
memory while it is read or written; no error message, log line or exception carries
one. Every request goes through the one client stack (:class:`kube.BlockingKube`).
Overwrites are JSON patches (``patch`` is the verb to grant, as for ``kubectl apply``;
the last writer wins), so a flow-run pod's Role needs ``get``, ``create``, ``patch`` and
``delete`` (docs/blocks-kubernetes.md).
"""

from __future__ import annotations

import argparse
import base64
import binascii
from collections.abc import Mapping
from typing import Any, Final

from headwater import contract
from headwater.blocks.stores import (
    MISSING,
    BlockDocument,
    Stores,
    validate_block_name,
    validate_variable_name,
)
from headwater.exceptions import (
    BlockAlreadyExistsError,
    BlockNotFoundError,
    BlockSecretNotFoundError,
    BlockStoreError,
    VariableAlreadyExistsError,
)

from headwater_operator import kube
from headwater_operator.api import (
    API_VERSION,
    Block,
    InvalidResourceError,
    Variable,
    parse_resource,
    variable_object_name,
)

BLOCK_LABEL: Final = f"{contract.GROUP}/block"
"""The label on a block's Secret: the block's name."""
UPDATE_ATTEMPTS: Final = 5
"""How often a Secret write that meets a concurrent create or delete looks again."""


def secret_name(block: str) -> str:
    """The Secret that holds block ``block``'s secret fields: ``<block>-block``."""
    return f"{block}-block"


def stores(argument: str | None) -> Stores:
    """The entry point (``headwater.stores``, name ``kubernetes``): the stores of namespace
    ``argument``, else the kubeconfig context's (or the pod's), else ``default``."""
    from headwater_operator.cli.common import resolve_namespace

    namespace = argument or resolve_namespace(argparse.Namespace())
    client = kube.get_blocking_client()
    return Stores(blocks=KubernetesBlockStore(client, namespace),
                  variables=KubernetesVariableStore(client, namespace))


def _refused(what: str, exc: kube.KubeError, namespace: str, resource: str) -> BlockStoreError:
    if exc.status == 403:
        return BlockStoreError(
            f"{what}: the Kubernetes API server refused it ({exc.message}); the identity in "
            f"use needs RBAC on {resource} in namespace {namespace} (a flow-run pod: a Role "
            "bound to the Deployment's runTemplate.serviceAccountName, see "
            "docs/blocks-kubernetes.md)")
    return BlockStoreError(f"{what}: the Kubernetes API server refused it "
                           f"({exc.status} {exc.reason}): {exc.message}")


class _Api:
    """Requests with errors worded for a store's caller."""

    def __init__(self, client: kube.BlockingKube, namespace: str) -> None:
        self.client = client
        self.namespace = namespace

    def call(self, what: str, resource: str, request: Any, *args: Any,
             **kwargs: Any) -> Any:
        """``request(*args, namespace=…, **kwargs)``; :class:`kube.NotFound`,
        :class:`kube.AlreadyExists` and :class:`kube.Conflict` pass through, any other
        failure becomes a :class:`BlockStoreError` saying ``what`` failed."""
        import aiohttp

        try:
            return request(*args, namespace=self.namespace, **kwargs)
        except (kube.NotFound, kube.AlreadyExists, kube.Conflict):
            raise
        except kube.KubeError as exc:
            if exc.reason == "NoConfiguration":
                raise BlockStoreError(f"{what}: {exc.message}") from None
            raise _refused(what, exc, self.namespace, resource) from None
        except (OSError, aiohttp.ClientError) as exc:
            raise BlockStoreError(f"{what}: cannot reach the Kubernetes API server "
                                  f"({exc or type(exc).__name__}); check $KUBECONFIG") from None


# --- blocks ------------------------------------------------------------------------------
def block_body(doc: BlockDocument, namespace: str) -> dict[str, Any]:
    """The Block object of a document whose secret fields go to ``<name>-block``."""
    spec: dict[str, Any] = {"type": doc.type, "data": dict(doc.data)}
    if doc.blocks:
        spec["blockRefs"] = {field: {"name": name} for field, name in doc.blocks.items()}
    if doc.secrets:
        spec["secretRefs"] = {field: {"name": secret_name(doc.name), "key": field}
                              for field in doc.secrets}
    return block_body_of(doc.name, spec, namespace)


def block_body_of(name: str, spec: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """The Block object ``name`` with ``spec``."""
    return {"apiVersion": API_VERSION, "kind": "Block",
            "metadata": {"name": name, "namespace": namespace}, "spec": dict(spec)}


def document_of(block: Block) -> BlockDocument:
    """The block document a Block object holds."""
    spec = block.spec
    return BlockDocument(
        name=block.metadata.name or "", type=spec.type, data=dict(spec.data),
        blocks={field: ref.name for field, ref in sorted(spec.block_refs.items())},
        secrets=tuple(sorted(spec.secret_refs)))


def secret_body(block: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """The Secret ``<name>-block`` holding ``values`` (field → value), owned by ``block``."""
    meta = block["metadata"]
    return {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {
            "name": secret_name(meta["name"]), "namespace": meta.get("namespace"),
            "labels": {BLOCK_LABEL: meta["name"],
                       contract.LABEL_MANAGED_BY: contract.MANAGED_BY_VALUE},
            # Not blocking, not controller-bound to finalizers: as the operator's pods
            # (render.py), so no `update blocks/finalizers` is needed where the
            # OwnerReferencesPermissionEnforcement admission plugin runs.
            "ownerReferences": [{"apiVersion": API_VERSION, "kind": "Block",
                                 "name": meta["name"], "uid": meta["uid"],
                                 "controller": True, "blockOwnerDeletion": False}]},
        "data": {field: base64.b64encode(value.encode()).decode()
                 for field, value in sorted(values.items())},
    }


def _owned_by(secret: Mapping[str, Any], block: Mapping[str, Any]) -> bool:
    uid = block["metadata"].get("uid")
    return any(ref.get("uid") == uid for ref in
               (secret.get("metadata") or {}).get("ownerReferences") or ())


class KubernetesBlockStore:
    """Blocks as ``Block`` objects, their secret fields in Secrets (see the module)."""

    def __init__(self, client: kube.BlockingKube, namespace: str) -> None:
        self.api = _Api(client, namespace)
        self.namespace = namespace

    @property
    def description(self) -> str:
        return f"the Kubernetes namespace {self.namespace} (Blocks)"

    def _block(self, name: str) -> Block:
        validate_block_name(name)
        try:
            body = self.api.call(f"reading block {name!r}", "blocks", self.api.client.get,
                                 kube.BLOCKS, name)
        except kube.NotFound:
            raise BlockNotFoundError(
                f"block {name!r} does not exist in {self.description}: create it with "
                f"`headwater block create {name} --type module:Class ...`, `kubectl apply`, "
                "or block.save() with HEADWATER_BLOCK_STORE=kubernetes", name) from None
        try:
            parsed = parse_resource(body)
        except InvalidResourceError as exc:
            raise BlockStoreError(f"block {name!r} in {self.description} is invalid: "
                                  f"{'; '.join(exc.errors)}; fix the Block object") from None
        assert isinstance(parsed, Block)
        return parsed

    def read(self, name: str) -> BlockDocument:
        return document_of(self._block(name))

    def read_secret(self, name: str, field: str) -> str:
        try:
            block = self._block(name)
        except BlockNotFoundError as exc:
            raise BlockSecretNotFoundError(str(exc), name, field) from None
        ref = block.spec.secret_refs.get(field)
        if ref is None:
            raise BlockSecretNotFoundError(
                f"block {name!r} has no secret field {field!r} (its Block's spec.secretRefs "
                f"names {sorted(block.spec.secret_refs) or 'none'}); save the block again "
                "or add the reference", name, field)
        where = (f"block {name!r}: its secret field {field!r} (spec.secretRefs.{field}) "
                 f"is Secret {self.namespace}/{ref.name} key {ref.key!r}")
        try:
            secret = self.api.call(f"reading the Secret of block {name!r}", "secrets",
                                   self.api.client.get, kube.SECRETS, ref.name)
        except kube.NotFound:
            raise BlockSecretNotFoundError(
                f"{where}, which does not exist: create it, or save the block again",
                name, field) from None
        encoded = (secret.get("data") or {}).get(ref.key)
        if encoded is None:
            raise BlockSecretNotFoundError(
                f"{where}, which has no such key: add it, or fix spec.secretRefs.{field}.key",
                name, field)
        try:
            return base64.b64decode(encoded, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise BlockStoreError(f"{where}, whose value is not UTF-8 text; secret fields "
                                  "are SecretStr values") from None

    def write(self, doc: BlockDocument, secrets: Mapping[str, str], overwrite: bool) -> None:
        validate_block_name(doc.name)
        wanted = block_body(doc, self.namespace)
        what = f"saving block {doc.name!r}"
        try:
            block = self.api.call(what, "blocks", self.api.client.create, kube.BLOCKS, wanted)
        except kube.AlreadyExists:
            if not overwrite:
                raise BlockAlreadyExistsError(
                    f"block {doc.name!r} already exists in {self.description}; pass "
                    "overwrite=True (CLI: --overwrite) to replace it") from None
            block = self._replace_spec(doc.name, wanted["spec"])
        self._write_secret(block, {field: secrets[field] for field in doc.secrets})

    def _replace_spec(self, name: str, spec: Mapping[str, Any]) -> dict[str, Any]:
        """Replace an existing Block's spec (its metadata, labels included, is kept)."""
        try:
            replaced: dict[str, Any] = self.api.call(
                f"saving block {name!r}", "blocks", self.api.client.patch, kube.BLOCKS,
                name, [kube.jp_replace("/spec", dict(spec))])
        except kube.NotFound:  # deleted since the create said it exists: create it again
            replaced = self.api.call(f"saving block {name!r}", "blocks",
                                     self.api.client.create, kube.BLOCKS,
                                     block_body_of(name, spec, self.namespace))
        return replaced

    def _write_secret(self, block: Mapping[str, Any], values: Mapping[str, str]) -> None:
        name = block["metadata"]["name"]
        what = f"saving the secret fields of block {name!r}"
        wanted = secret_body(block, values)
        for _ in range(UPDATE_ATTEMPTS):
            try:
                current = self.api.call(what, "secrets", self.api.client.get, kube.SECRETS,
                                        secret_name(name))
            except kube.NotFound:
                if not values:
                    return
                try:
                    self.api.call(what, "secrets", self.api.client.create, kube.SECRETS,
                                  wanted)
                    return
                except kube.AlreadyExists:
                    continue  # made meanwhile: look at it again
            labels = (current.get("metadata") or {}).get("labels") or {}
            if labels.get(BLOCK_LABEL) != name and not _owned_by(current, block):
                raise BlockStoreError(
                    f"{what}: Secret {self.namespace}/{secret_name(name)} exists and is not "
                    f"this block's (no label {BLOCK_LABEL}={name}); rename or delete it")
            try:
                if not values:
                    self.api.call(what, "secrets", self.api.client.delete, kube.SECRETS,
                                  secret_name(name))
                    return
                # A JSON patch, so the Secret's other keys go and its owner is this Block
                # (a Block deleted and saved again has a new uid).
                self.api.call(what, "secrets", self.api.client.patch, kube.SECRETS,
                              secret_name(name), [
                                  kube.jp_add("/data", wanted["data"]),
                                  kube.jp_add("/metadata/labels",
                                              {**labels, **wanted["metadata"]["labels"]}),
                                  kube.jp_add("/metadata/ownerReferences",
                                              wanted["metadata"]["ownerReferences"])])
                return
            except kube.NotFound:
                continue  # deleted meanwhile: create it
        raise BlockStoreError(f"{what}: the Secret kept changing while it was written; "
                              "try again")

    def delete(self, name: str) -> None:
        validate_block_name(name)
        try:
            # Its Secret <name>-block goes with it: the garbage collector deletes the
            # objects a deleted owner leaves behind.
            self.api.call(f"deleting block {name!r}", "blocks", self.api.client.delete,
                          kube.BLOCKS, name)
        except kube.NotFound:
            raise BlockNotFoundError(f"block {name!r} does not exist in {self.description}",
                                     name) from None

    def list(self) -> list[BlockDocument]:
        bodies = self.api.call("listing blocks", "blocks", self.api.client.list, kube.BLOCKS)
        documents = []
        for body in bodies:
            try:
                parsed = parse_resource(body)
            except InvalidResourceError:
                continue  # `headwater block get` reports it; a list shows the valid ones
            assert isinstance(parsed, Block)
            documents.append(document_of(parsed))
        return sorted(documents, key=lambda doc: doc.name)


# --- variables ---------------------------------------------------------------------------
def variable_body(name: str, value: Any, namespace: str) -> dict[str, Any]:
    """The Variable object of variable ``name``."""
    object_name = variable_object_name(name)
    spec: dict[str, Any] = {"value": value}
    if object_name != name:
        spec["name"] = name
    return {"apiVersion": API_VERSION, "kind": "Variable",
            "metadata": {"name": object_name, "namespace": namespace}, "spec": spec}


def _variable(body: Mapping[str, Any]) -> Variable | None:
    try:
        return Variable.model_validate(dict(body))
    except ValueError:
        return None


class KubernetesVariableStore:
    """Variables as ``Variable`` objects (see the module)."""

    def __init__(self, client: kube.BlockingKube, namespace: str) -> None:
        self.api = _Api(client, namespace)
        self.namespace = namespace

    @property
    def description(self) -> str:
        return f"the Kubernetes namespace {self.namespace} (Variables)"

    def _get(self, name: str) -> dict[str, Any] | None:
        validate_variable_name(name)
        try:
            body: dict[str, Any] = self.api.call(
                f"reading variable {name!r}", "variables", self.api.client.get,
                kube.VARIABLES, variable_object_name(name))
        except kube.NotFound:
            return None
        parsed = _variable(body)
        return body if parsed is not None and parsed.variable_name == name else None

    def get(self, name: str) -> Any:
        body = self._get(name)
        return MISSING if body is None else body["spec"].get("value")

    def set(self, name: str, value: Any, overwrite: bool) -> None:
        wanted = variable_body(name, value, self.namespace)
        what = f"setting variable {name!r}"
        try:
            self.api.call(what, "variables", self.api.client.create, kube.VARIABLES, wanted)
            return
        except kube.AlreadyExists:
            if not overwrite:
                raise VariableAlreadyExistsError(
                    f"variable {name!r} already exists in {self.description}; pass "
                    "overwrite=True to replace it") from None
        if self._get(name) is None:
            raise BlockStoreError(
                f"{what}: the object {variable_object_name(name)!r} in "
                f"{self.description} holds another variable (or went meanwhile); rename "
                "or delete it, or set it again")
        try:
            self.api.call(what, "variables", self.api.client.patch, kube.VARIABLES,
                          variable_object_name(name), [kube.jp_replace("/spec", wanted["spec"])])
        except kube.NotFound:
            self.api.call(what, "variables", self.api.client.create, kube.VARIABLES, wanted)

    def delete(self, name: str) -> bool:
        body = self._get(name)
        if body is None:
            return False
        try:
            self.api.call(f"unsetting variable {name!r}", "variables",
                          self.api.client.delete, kube.VARIABLES, body["metadata"]["name"])
        except kube.NotFound:
            return False
        return True

    def list(self) -> dict[str, Any]:
        bodies = self.api.call("listing variables", "variables", self.api.client.list,
                               kube.VARIABLES)
        values: dict[str, Any] = {}
        for body in bodies:
            parsed = _variable(body)
            if parsed is not None:
                values[parsed.variable_name] = parsed.spec.value
        return dict(sorted(values.items()))


class NotificationBlocks:
    """Loads a namespace's notification blocks for the automations controller (which may
    not import this module: it gets :meth:`load` from the application).

    Blocking (it reads the Block and its Secret through :class:`kube.BlockingKube`): the
    controller calls it from its delivery threads, never on the event loop. Each load
    reads afresh, so an edited block or a rotated Secret takes effect at the next
    delivery; the secret values live only in the returned block object.
    """

    def __init__(self, client: kube.BlockingKube | None = None) -> None:
        self._client = client

    def load(self, namespace: str, name: str) -> Any:
        """The block ``name`` of ``namespace``, as its stored class."""
        from headwater.blocks.core import load_from

        if self._client is None:
            self._client = kube.BlockingKube()
        return load_from(KubernetesBlockStore(self._client, namespace), name)
