"""Label values Headwater writes, and the selectors that find objects by them.

Object names may be 253 characters long, label values only 63 (apimachinery v0.32.9
``pkg/util/validation/validation.go`` ``IsValidLabelValue``: ``LabelValueMaxLength = 63``,
"must be no more than 63 characters"). An object carrying a longer value is refused with
422 on create, by every API server, and the same create fails again on every retry. So:

* every label value Headwater derives from a name goes through :func:`label_value`, which
  keeps names of up to 63 characters as they are and shortens longer ones to a stable
  form (a readable prefix and a hash, so two long names never share a value);
* everything that *selects* by such a label builds its selector with :func:`selector`,
  which applies the same transformation. A selector written with the raw long name would
  match nothing (and is itself invalid: the API server checks selector values too).

Schedule names are at most 52 characters (``api/schedule.py``), so the
``headwater.dev/schedule`` label always holds the Schedule's name itself and the Schedule
controller may read a run's Schedule back from it.
"""

from __future__ import annotations

import hashlib

LABEL_VALUE_MAX = 63
"""apimachinery ``validation.LabelValueMaxLength``."""
_DIGEST_CHARS = 8


def label_value(value: str) -> str:
    """``value`` if it is a valid label value length, else a stable shortened form.

    ``value`` is an object name (a DNS subdomain: lower-case letters, digits, ``-`` and
    ``.``, starting and ending with a letter or digit), so the result is a valid label
    value: the kept prefix starts with the name's first character and the hash ends it.
    """
    if len(value) <= LABEL_VALUE_MAX:
        return value
    digest = hashlib.sha256(value.encode()).hexdigest()[:_DIGEST_CHARS]
    prefix = value[: LABEL_VALUE_MAX - _DIGEST_CHARS - 1].rstrip("-.")
    return f"{prefix}-{digest}"


def selector(key: str, name: str) -> dict[str, str]:
    """The equality selector ``{key: label_value(name)}`` that finds what was labelled
    with ``name`` under ``key``."""
    return {key: label_value(name)}
