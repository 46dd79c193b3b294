"""What the emulator does for the built-in kinds it serves, as the Kubernetes API server does.

Object metadata rules shared by every kind, and the validation of the built-in objects
Headwater writes (Pods, Events, Leases and their neighbours), checked against a pinned
Kubernetes version (1.32), worded as that version words them (see ``..fielderrors``).
"""

from headwater_dev.builtins.decoding import (
    Decoded,
    decode,
    decode_error_message,
    schema_errors,
    strict_error_message,
    unknown_builtin_fields,
)
from headwater_dev.builtins.kinds import (
    is_builtin,
    validate_builtin,
    validate_builtin_status,
)
from headwater_dev.builtins.objectmeta import (
    validate_object_meta,
    validate_object_meta_update,
)
from headwater_dev.builtins.pods import default_pod

__all__ = [
    "Decoded",
    "decode",
    "decode_error_message",
    "default_pod",
    "is_builtin",
    "schema_errors",
    "strict_error_message",
    "unknown_builtin_fields",
    "validate_builtin",
    "validate_builtin_status",
    "validate_object_meta",
    "validate_object_meta_update",
]
