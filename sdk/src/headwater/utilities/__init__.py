"""Helpers for flow authors, laid out as in Prefect (``headwater.utilities.annotations``)."""

from headwater.utilities.annotations import BaseAnnotation, allow_failure, quote, unmapped, unwrap

__all__ = ["BaseAnnotation", "allow_failure", "quote", "unmapped", "unwrap"]
