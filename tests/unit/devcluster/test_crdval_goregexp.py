"""Go's regexp parse errors (regexp/syntax, Go 1.23) for CRD schema patterns.

The first case is Kubernetes' own expectation (apiextensions-apiserver v0.32.9
test/integration/validation_test.go "invalid regex pattern"); the others follow
regexp/syntax/parse.go's error codes and the text each one quotes.
"""

from __future__ import annotations

import pytest
from headwater_dev.goregexp import compile_error


@pytest.mark.parametrize(("pattern", "error"), [
    ("+", "missing argument to repetition operator: `+`"),
    ("a**", "invalid nested repetition operator: `**`"),
    ("x**?", "invalid nested repetition operator: `**?`"),
    ("(?=x)", "invalid or unsupported Perl syntax: `(?=`"),
    ("(?<=a)b", "invalid named capture: `(?<=a)b`"),
    ("(?i", "invalid or unsupported Perl syntax: `(?i`"),
    ("a{2,1}", "invalid repeat count: `{2,1}`"),
    ("(a{1000}){2}", "invalid repeat count: `{2}`"),
    ("[z-a]", "invalid character class range: `z-a`"),
    ("[[:word2:]]", "invalid character class range: `[:word2:]`"),
    (r"\p{Klingon}", r"invalid character class range: `\p{Klingon}`"),
    ("[a", "missing closing ]: `[a`"),
    ("a)", "unexpected ): `a)`"),
    ("(a", "missing closing ): `(a`"),
    (r"\1", r"invalid escape sequence: `\1`"),
    (r"[\b]", r"invalid escape sequence: `\b`"),
    (r"\x{110000}", r"invalid escape sequence: `\x{110000`"),
    ("\\", "trailing backslash at end of expression: ``"),
])
def test_refused_patterns(pattern: str, error: str) -> None:
    assert compile_error(pattern) == f"error parsing regexp: {error}"


@pytest.mark.parametrize("pattern", [
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", r"^\d+(\.\d+)?$", "(?P<n>a)(?<m>b)", "(?i)abc",
    "a{,5}", "x*?", r"\p{Greek}\PL", "[[:alpha:]-]", r"\Qa*\E", "a|b|", "()", "^*$",
])
def test_accepted_patterns(pattern: str) -> None:
    assert compile_error(pattern) is None
