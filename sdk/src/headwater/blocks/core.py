"""``Block``: typed, reusable configuration with Prefect 3's everyday API.

A block is a pydantic model that can be saved under a name and loaded back anywhere the
same store is reachable (docs/blocks.md)::

    class WarehouseCredentials(Block):
        user: str
        password: SecretStr

    WarehouseCredentials(user="etl", password="...").save("wh-creds")
    creds = WarehouseCredentials.load("wh-creds")

What it must respect:

* A block type is known by its class path ``module:QualName``. ``load`` on a subclass
  checks the stored type is that class (a class defined in a flow script matches by
  name: the script is ``__main__`` when run by hand and another module in a pod);
  ``Block.load`` imports the stored type.
* Secret values never reach the document: top-level ``SecretStr`` fields are handed to
  the store apart (:mod:`headwater.blocks.stores`), and a ``SecretStr`` anywhere else
  (inside a list, a dict, a plain model) is refused at ``save`` rather than written as a
  mask. Every secret value a block holds is registered with
  :func:`headwater.secrets.redact`, so it is masked in logs, states, the run record and
  the summary.
* Nested blocks are saved by reference (an unsaved one first, as ``<name>-<field>``) and
  loaded recursively from the same store; a cycle is an error.
* Errors name the block, the field and the fix.
* Called directly from an ``async def``, ``load``/``save``/``delete`` return a coroutine,
  as Prefect 3's do; ``aload``/``asave``/``adelete`` are always coroutines.
"""

from __future__ import annotations

import importlib
import re
import types
import uuid
import warnings
from typing import Any, ClassVar, Self, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, PrivateAttr, SecretBytes, SecretStr, ValidationError

from headwater import secrets
from headwater.blocks import stores
from headwater.blocks.stores import BlockDocument, BlockStore
from headwater.exceptions import (
    BlockAlreadyExistsError,
    BlockNotFoundError,
    BlockSecretNotFoundError,
    BlockStoreError,
    BlockTypeError,
    BlockValidationError,
)
from headwater.utilities.asyncutils import called_from_coroutine

__all__ = ["Block", "BlockNotSavedError", "type_path"]

_REGISTRY: dict[str, type[Block]] = {}
"""Every Block subclass defined in this process, by class path (``Block.load`` finds a
class defined in a script or a function here, where importing cannot)."""

_SCRIPT_MODULES = ("__main__", "__headwater_flow_")
"""Modules a flow script runs as: by hand (``python flow.py``) and in a pod
(:func:`headwater.loader.load_flow`)."""

_NAMESPACE = uuid.UUID("6f1c8f3e-9d0a-5b53-8a43-5f1b0f1e2d7c")


class BlockNotSavedError(RuntimeError):
    """An operation needs a saved block (Prefect's name)."""


def type_path(cls: type) -> str:
    """The class path a block type is known by: ``module:QualName``."""
    return f"{cls.__module__}:{cls.__qualname__}"


def _slugify(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _document_id(name: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, name)


def _is_script_module(module: str) -> bool:
    return module.startswith(_SCRIPT_MODULES)


def _same_script_class(stored: str, cls: type) -> bool:
    """A class defined in a flow script, saved from one module name and loaded under
    another (``__main__`` by hand, ``__headwater_flow_<stem>`` in a pod)."""
    module, _, qualname = stored.partition(":")
    return qualname == cls.__qualname__ and (
        _is_script_module(module) or _is_script_module(cls.__module__))


def _block_class_in(annotation: Any) -> type[Block] | None:
    """The Block subclass a field's annotation names (``X``, ``X | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, Block):
        return annotation
    if get_origin(annotation) in (Union, types.UnionType):
        for arg in get_args(annotation):
            found = _block_class_in(arg)
            if found is not None:
                return found
    return None


def _is_secret_annotation(annotation: Any) -> bool:
    """``SecretStr``, or a union with it (``SecretStr | None``)."""
    if annotation is SecretStr:
        return True
    return get_origin(annotation) in (Union, types.UnionType) and SecretStr in get_args(
        annotation)


def _hidden(value: Any, depth: int = 0) -> str | None:
    """What a field value hides that a document cannot hold: a secret or a block inside
    a container or a plain model (``None`` when there is none)."""
    if depth > 0 and isinstance(value, SecretStr | SecretBytes):
        return type(value).__name__
    if depth > 0 and isinstance(value, Block):
        return "Block"
    if depth > 20:
        return None
    if isinstance(value, dict):
        items: Any = value.values()
    elif isinstance(value, list | tuple | set | frozenset):
        items = value
    elif isinstance(value, BaseModel) and not isinstance(value, Block):
        items = [getattr(value, name) for name in type(value).model_fields]
    else:
        return None
    for item in items:
        found = _hidden(item, depth + 1)
        if found is not None:
            return found
    return None


def _find_type(path: str, name: str) -> type[Block]:
    """The Block class at ``path`` (``module:QualName``); :class:`BlockTypeError` naming
    block ``name`` and the fix when it cannot be imported."""
    found = _REGISTRY.get(path)
    if found is not None:
        return found
    module_name, _, qualname = path.partition(":")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        fix = ("a class defined in a flow script loads only through its class "
               f"(`{qualname}.load({name!r})`) in that script"
               if _is_script_module(module_name) or "<locals>" in qualname else
               "install the package that defines it, or load it through its class")
        raise BlockTypeError(f"block {name!r} has type {path}, which cannot be imported "
                             f"({exc}): {fix}") from None
    if not (isinstance(obj, type) and issubclass(obj, Block)):
        raise BlockTypeError(f"block {name!r} has type {path}, which is not a Block class")
    return obj


def _resolve_type(doc: BlockDocument, expected: type[Block]) -> type[Block]:
    """The class to load ``doc`` as, when the caller expects ``expected``."""
    if expected is Block:
        return _find_type(doc.type, doc.name)
    if doc.type == type_path(expected) or _same_script_class(doc.type, expected):
        return expected
    try:
        found = _find_type(doc.type, doc.name)
    except BlockTypeError:
        found = None
    if found is not None and issubclass(found, expected):
        return found
    raise BlockTypeError(
        f"block {doc.name!r} is a {doc.type}, not a {type_path(expected)}: load it with "
        f"Block.load({doc.name!r}) or its own class, or save the {expected.__name__} "
        "under another name")


def _split_slug(cls: type[Block], name: str) -> tuple[str | None, str]:
    """``Block.load("secret/db")`` (Prefect's ``<block-type-slug>/<name>``) on the base
    class; a plain name anywhere."""
    if cls is Block and "/" in name:
        slug, _, name = name.partition("/")
        return slug, name
    return None, name


def _check_slug(slug: str | None, doc: BlockDocument) -> None:
    if slug is None:
        return
    try:
        actual = _find_type(doc.type, doc.name).get_block_type_slug()
    except BlockTypeError:
        actual = _slugify(doc.type.rpartition(".")[2].rpartition(":")[2])
    if actual != slug:
        raise BlockTypeError(f"block {doc.name!r} is a {doc.type} (slug {actual!r}), not a "
                             f"{slug!r}: load it as Block.load('{actual}/{doc.name}')")


class _Loader:
    """One ``load``: the block and its nested blocks, from one store."""

    def __init__(self, store: BlockStore, validate: bool) -> None:
        self.store = store
        self.validate = validate

    def load(self, expected: type[Block], name: str, chain: tuple[str, ...] = ()) -> Block:
        if name in chain:
            raise BlockStoreError(f"block {chain[0]!r} refers to itself: "
                                  f"{' -> '.join((*chain, name))}; save the nested blocks "
                                  "under names that do not loop back")
        stores.validate_block_name(name)
        doc = self.store.read(name)
        cls = _resolve_type(doc, expected)
        aliases = {(info.alias or field): field for field, info in cls.model_fields.items()}
        values: dict[str, Any] = dict(doc.data)
        for key, nested_name in doc.blocks.items():
            field_info = cls.model_fields.get(aliases.get(key, key))
            nested_cls = _block_class_in(field_info.annotation if field_info else None)
            try:
                values[key] = self.load(nested_cls or Block, nested_name, (*chain, name))
            except (BlockNotFoundError, BlockSecretNotFoundError, BlockTypeError,
                    BlockValidationError) as exc:
                raise _with_context(exc, f"block {name!r}, field {key!r}") from None
        for key in doc.secrets:
            value = self.store.read_secret(name, key)
            secrets.remember(value)
            values[key] = SecretStr(value)
        block = self._validate(cls, doc, values)
        block._block_document_name = name
        block._block_document_id = _document_id(name)
        return block

    def _validate(self, cls: type[Block], doc: BlockDocument,
                  values: dict[str, Any]) -> Block:
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            errors = exc.errors(include_input=False, include_url=False)
        problems = "; ".join(
            f"field {'.'.join(str(part) for part in error['loc']) or '(block)'!r}: "
            f"{error['msg']}" for error in errors)
        if not self.validate:
            missing = {str(error["loc"][0]): None for error in errors if error["loc"]}
            warnings.warn(f"block {doc.name!r} ({doc.type}) loaded without validation: "
                          f"{problems}; set these fields and save it again with "
                          f"`.save({doc.name!r}, overwrite=True)`", stacklevel=4)
            return cls.model_construct(**{**values, **missing})
        raise BlockValidationError(
            f"block {doc.name!r} ({doc.type}) does not fit {cls.__name__}: {problems}. "
            f"Save it again with these fields (`{cls.__name__}(...).save({doc.name!r}, "
            f"overwrite=True)`, or `headwater block create {doc.name} --type {doc.type} "
            "--field ...` in a cluster), or load it with validate=False and set them")


def _with_context(exc: Exception, where: str) -> Exception:
    """``exc`` again, its message prefixed with ``where`` (the call, the parent block)."""
    message = f"{where}: {exc}"
    if isinstance(exc, BlockSecretNotFoundError):
        return BlockSecretNotFoundError(message, exc.name, exc.field)
    if isinstance(exc, BlockNotFoundError):
        return type(exc)(message, exc.name)
    return type(exc)(message)


class _Saver:
    """One ``save``: the block, after its unsaved nested blocks, into one store."""

    def __init__(self, store: BlockStore, overwrite: bool) -> None:
        self.store = store
        self.overwrite = overwrite

    def save(self, block: Block, name: str, chain: tuple[int, ...] = ()) -> uuid.UUID:
        stores.validate_block_name(name)
        if id(block) in chain:
            raise BlockStoreError(f"block {name!r} contains itself: a block cannot be "
                                  "nested in itself")
        nested: dict[str, str] = {}
        secret_values: dict[str, str] = {}
        exclude: set[str] = set()
        annotations = {field: info.annotation for field, info in type(block).model_fields.items()}
        for field, key, value in block._document_fields():
            if isinstance(value, Block):
                nested[key] = self._nested(block, name, key, value, chain)
                exclude.add(field)
            elif isinstance(value, SecretStr):
                secret_values[key] = value.get_secret_value()
                exclude.add(field)
            elif isinstance(value, str) and _is_secret_annotation(annotations.get(field)):
                # Assigned without validation (pydantic does not validate assignments):
                # still a secret.
                secret_values[key] = value
                exclude.add(field)
            else:
                hidden = "SecretBytes" if isinstance(value, SecretBytes) else _hidden(value)
                if hidden is not None:
                    raise BlockTypeError(
                        f"block {name!r}, field {field!r}: holds a {hidden} where a block "
                        "document cannot keep it apart; only top-level SecretStr fields "
                        "(or SecretStr | None) are stored as secrets and only top-level "
                        "Block fields as nested blocks: make it such a field of its own")
        data = block.model_dump(mode="json", by_alias=True, exclude=exclude)
        doc = BlockDocument(name=name, type=type_path(type(block)), data=data,
                            blocks=nested, secrets=tuple(secret_values))
        for value in secret_values.values():
            secrets.remember(value)
        self.store.write(doc, secret_values, self.overwrite)
        block._block_document_name = name
        block._block_document_id = _document_id(name)
        return block._block_document_id

    def _nested(self, parent: Block, name: str, key: str, value: Block,
                chain: tuple[int, ...]) -> str:
        if value._block_document_name is not None:
            return value._block_document_name
        nested_name = f"{name}-{key.replace('_', '-').lower()}"
        try:
            stores.validate_block_name(nested_name)
        except ValueError:
            raise BlockStoreError(
                f"block {name!r}, field {key!r}: the nested block is not saved and "
                f"{nested_name!r} is no block name; save it first "
                f"(`{key}_block.save('<name>')`)") from None
        self.save(value, nested_name, (*chain, id(parent)))
        return nested_name


def _current_store() -> BlockStore:
    return stores.current().blocks


def load_from(store: BlockStore, name: str, *, validate: bool = True) -> Block:
    """The block saved as ``name`` in ``store`` (its stored type, nested blocks and secret
    values), whatever store ``HEADWATER_BLOCK_STORE`` selects: the operator loads a
    namespace's notification blocks this way (``Block.load`` reads the process's store)."""
    return _Loader(store, validate).load(Block, stores.validate_block_name(name))


class Block(BaseModel):
    """A base class for typed configuration saved under a name (Prefect 3's ``Block``).

    Subclass it with pydantic fields; ``SecretStr`` fields are kept as secrets, fields
    typed as another Block are nested blocks. Instead of ``__init__``, override
    :meth:`block_initialization`, called after construction and after ``load``.
    """

    model_config = ConfigDict(extra="allow")

    _block_type_name: ClassVar[str | None] = None
    _block_type_slug: ClassVar[str | None] = None
    _logo_url: ClassVar[Any] = None
    _documentation_url: ClassVar[Any] = None
    _description: ClassVar[str | None] = None
    _code_example: ClassVar[str | None] = None
    _block_schema_capabilities: ClassVar[list[str] | None] = None

    _block_document_name: str | None = PrivateAttr(default=None)
    _block_document_id: uuid.UUID | None = PrivateAttr(default=None)
    _is_anonymous: bool | None = PrivateAttr(default=None)

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        _REGISTRY[type_path(cls)] = cls

    def model_post_init(self, context: Any, /) -> None:
        for _, _, value in self._document_fields():
            if isinstance(value, SecretStr):
                secrets.remember(value.get_secret_value())
        self.block_initialization()

    def block_initialization(self) -> None:
        """Called after the block is built or loaded (Prefect's hook); does nothing."""

    def __str__(self) -> str:
        return self.__repr__()

    def _document_fields(self) -> list[tuple[str, str, Any]]:
        """``(field name, document key, value)`` of every field, extra ones included."""
        fields = [(field, info.alias or field, getattr(self, field, None))
                  for field, info in type(self).model_fields.items()]
        fields.extend((key, key, value) for key, value in (self.__pydantic_extra__ or {}).items())
        return fields

    # --- type information (Prefect's names) -------------------------------------------

    @classmethod
    def get_block_type_name(cls) -> str:
        """``_block_type_name``, else the class name."""
        return cls._block_type_name or cls.__name__

    @classmethod
    def get_block_type_slug(cls) -> str:
        """``_block_type_slug``, else the type name, slugified (``"json"``, ``"secret"``)."""
        return _slugify(cls._block_type_slug or cls.get_block_type_name())

    @classmethod
    def get_description(cls) -> str | None:
        """``_description``, else the docstring's first paragraph."""
        if cls._description is not None:
            return cls._description
        doc = cls.__doc__ or ""
        first = doc.strip().split("\n\n", 1)[0]
        return " ".join(first.split()) or None

    @classmethod
    def get_code_example(cls) -> str:
        """``_code_example``, else how to load a block of this type."""
        if cls._code_example is not None:
            return cls._code_example
        variable = cls.get_block_type_slug().replace("-", "_") + "_block"
        return (f"from {cls.__module__} import {cls.__name__}\n\n"
                f'{variable} = {cls.__name__}.load("BLOCK_NAME")')

    @classmethod
    def get_block_capabilities(cls) -> frozenset[str]:
        """The capabilities this class and its bases declare."""
        return frozenset(capability for base in cls.__mro__
                         for capability in getattr(base, "_block_schema_capabilities", None)
                         or [])

    @staticmethod
    def is_block_class(block: Any) -> bool:
        """Whether ``block`` is a Block class."""
        return isinstance(block, type) and issubclass(block, Block)

    @staticmethod
    def annotation_refers_to_block_class(annotation: Any) -> bool:
        """Whether a field annotation is a Block class or a union with one."""
        return _block_class_in(annotation) is not None

    @classmethod
    def register_type_and_schema(cls, client: Any = None) -> None:
        """Nothing to do: a block type is its class path, known without registration
        (kept so setup scripts written for Prefect run unchanged)."""

    def get_block_placeholder(self) -> str:
        """``prefect.blocks.<slug>.<name>`` of a saved block (Prefect's template form)."""
        if self._block_document_name is None:
            raise BlockNotSavedError("Could not generate block placeholder for unsaved block.")
        return f"prefect.blocks.{self.get_block_type_slug()}.{self._block_document_name}"

    # --- load ------------------------------------------------------------------------

    @classmethod
    def load(cls, name: str, validate: bool = True, *, _sync: bool | None = None) -> Self:
        """The block saved as ``name``, with its nested blocks and secret values.

        On a subclass the stored type must be that class (or a subclass of it); on
        ``Block`` itself the stored type is imported, and ``name`` may be Prefect's
        ``"<block-type-slug>/<name>"``. ``validate=False`` loads a block whose stored
        fields no longer fit the class, with a warning naming them. Called directly from
        an ``async def``, returns a coroutine (Prefect 3).
        """
        if _sync is False or (_sync is None and called_from_coroutine()):
            coroutine: Any = cls.aload(name, validate)
            return coroutine  # type: ignore[no-any-return]
        return cls._load(name, validate)

    @classmethod
    async def aload(cls, name: str, validate: bool = True) -> Self:
        """:meth:`load` as a coroutine (the store is read in a worker thread)."""
        import asyncio

        return await asyncio.to_thread(cls._load, name, validate)

    @classmethod
    def _load(cls, name: str, validate: bool) -> Self:
        slug, name = _split_slug(cls, name)
        store = _current_store()
        loader = _Loader(store, validate)
        try:
            if slug is not None:
                _check_slug(slug, store.read(stores.validate_block_name(name)))
            block = loader.load(cls, name)
        except (BlockNotFoundError, BlockSecretNotFoundError) as exc:
            raise _with_context(exc, f"{cls.__name__}.load({name!r})") from None
        assert isinstance(block, cls)
        return block

    # --- save ------------------------------------------------------------------------

    def save(self, name: str | None = None, overwrite: bool = False, *,
             _sync: bool | None = None) -> uuid.UUID:
        """Save this block as ``name`` (default: the name it was loaded or saved as).

        Refuses an existing name unless ``overwrite=True``. Nested blocks are saved by
        reference: an unsaved one first, as ``<name>-<field>``. Returns the block's id
        (derived from its name). Called directly from an ``async def``, returns a
        coroutine (Prefect 3).
        """
        if _sync is False or (_sync is None and called_from_coroutine()):
            coroutine: Any = self.asave(name, overwrite)
            return coroutine  # type: ignore[no-any-return]
        return self._save(name, overwrite)

    async def asave(self, name: str | None = None, overwrite: bool = False) -> uuid.UUID:
        """:meth:`save` as a coroutine (the store is written in a worker thread)."""
        import asyncio

        return await asyncio.to_thread(self._save, name, overwrite)

    def _save(self, name: str | None, overwrite: bool) -> uuid.UUID:
        if name is None:
            name = self._block_document_name
            if name is None:
                raise ValueError(
                    f"{type(self).__name__}.save() needs a name: this block was neither "
                    f"loaded nor saved before; call .save('<name>') ({stores.BLOCK_NAME_RULE})")
        try:
            return _Saver(_current_store(), overwrite).save(self, name)
        except BlockAlreadyExistsError as exc:
            raise BlockAlreadyExistsError(f"{type(self).__name__}.save({name!r}): {exc}") \
                from None

    # --- delete ----------------------------------------------------------------------

    @classmethod
    def delete(cls, name: str, *, _sync: bool | None = None) -> None:
        """Delete the block saved as ``name`` (not its nested blocks). On a subclass the
        stored type must be that class. Called directly from an ``async def``, returns a
        coroutine (Prefect 3)."""
        if _sync is False or (_sync is None and called_from_coroutine()):
            coroutine: Any = cls.adelete(name)
            return coroutine  # type: ignore[no-any-return]
        cls._delete(name)
        return None

    @classmethod
    async def adelete(cls, name: str) -> None:
        """:meth:`delete` as a coroutine."""
        import asyncio

        await asyncio.to_thread(cls._delete, name)

    @classmethod
    def _delete(cls, name: str) -> None:
        slug, name = _split_slug(cls, name)
        store = _current_store()
        try:
            doc = store.read(stores.validate_block_name(name))
            _check_slug(slug, doc)
            if cls is not Block:
                _resolve_type(doc, cls)
            store.delete(name)
        except BlockNotFoundError as exc:
            raise _with_context(exc, f"{cls.__name__}.delete({name!r})") from None

