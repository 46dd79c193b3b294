"""Metadata-only answers: ``PartialObjectMetadata`` and ``PartialObjectMetadataList``.

A client that needs only objects' metadata asks for it in ``Accept``, as client-go's
metadata client does: ``application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1``
for a GET or a watch, ``…;as=PartialObjectMetadataList;…`` for a LIST. The API server
then answers with the objects' ``metadata`` and nothing else, so a controller can watch
Secrets without ever receiving their data. What a real server does, and the emulator
with it (k8s.io/apiserver v0.32.9 ``pkg/endpoints/handlers/response.go``
``doTransformObject``, ``asPartialObjectMetadata``, ``asPartialObjectMetadataList``; the
endpoint allows both targets on every resource, ``handlers/rest.go``
``AllowsMediaTypeTransform``):

* GET with ``as=PartialObjectMetadata``: ``{apiVersion: meta.k8s.io/v1, kind:
  PartialObjectMetadata, metadata}`` (the object's whole ``metadata``);
* LIST with ``as=PartialObjectMetadataList``: ``{apiVersion: meta.k8s.io/v1, kind:
  PartialObjectMetadataList, metadata: {resourceVersion, continue}, items: [...]}``, each
  item a ``PartialObjectMetadata`` as above;
* the wrong one of the two (a list asked for as ``PartialObjectMetadata``, an object as
  ``…List``): ``406 NotAcceptable`` "you requested PartialObjectMetadata, but the
  requested object is a list" (or "…List, but the requested object is not a list");
* a watch with ``as=PartialObjectMetadata``: each event's object as above. A watch that
  asks for ``…List`` gets whole objects: the server logs the failed conversion and sends
  the object unconverted (``watchEmbeddedEncoder.doEncode``).

Simplification: only ``meta.k8s.io/v1`` is served (``v1beta1`` ranges are skipped by
:func:`headwater_dev.tables.negotiated_conversion`, as for Tables), and only JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from headwater_dev.apierrors import ApiError

JsonObject = dict[str, Any]
META_API_VERSION = "meta.k8s.io/v1"
OBJECT_KIND = "PartialObjectMetadata"
LIST_KIND = "PartialObjectMetadataList"


def partial_object(obj: Mapping[str, Any]) -> JsonObject:
    """The ``PartialObjectMetadata`` of one object: its metadata, nothing else."""
    return {"apiVersion": META_API_VERSION, "kind": OBJECT_KIND,
            "metadata": dict(obj.get("metadata") or {})}


def partial_list(items: Sequence[Mapping[str, Any]],
                 list_metadata: Mapping[str, Any]) -> JsonObject:
    """The ``PartialObjectMetadataList`` of a LIST's items and list metadata."""
    return {"apiVersion": META_API_VERSION, "kind": LIST_KIND,
            "metadata": dict(list_metadata),
            "items": [partial_object(item) for item in items]}


def refuse(target: str, kind: str, *, is_list: bool) -> ApiError:
    """The 406 for asking a list as ``PartialObjectMetadata`` or an object as ``…List``."""
    if is_list:
        return ApiError(406, "NotAcceptable", f"you requested {target}, but the requested "
                        f"object is a list ({kind}List)")
    return ApiError(406, "NotAcceptable", f"you requested {target}, but the requested "
                    f"object is not a list ({kind})")


__all__ = ["LIST_KIND", "META_API_VERSION", "OBJECT_KIND", "partial_list", "partial_object",
           "refuse"]
