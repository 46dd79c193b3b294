"""names: apimachinery v0.32.9 pkg/util/validation/validation.go, message for message.

The expected strings are those of apimachinery's own validation_test.go / the messages a
1.32 API server returns (e.g. ``kubectl create configmap 'Bad_Name'``).
"""

from __future__ import annotations

from headwater_dev.builtins import names

DNS1123_SUBDOMAIN = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*"
    "[a-z0-9])?)*')")
DNS1123_LABEL = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
QUALIFIED = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex "
    "used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


def test_dns1123_subdomain() -> None:
    assert names.is_dns1123_subdomain("example.com") == []
    assert names.is_dns1123_subdomain("Example") == [DNS1123_SUBDOMAIN]
    assert names.is_dns1123_subdomain("a" * 254) == ["must be no more than 253 characters"]
    assert names.is_dns1123_subdomain("ok\n") == [DNS1123_SUBDOMAIN]


def test_dns1123_label_reports_dots_separately() -> None:
    assert names.is_dns1123_label("my-name") == []
    assert names.is_dns1123_label("a.b") == ["must not contain dots"]
    assert names.is_dns1123_label("-a") == [DNS1123_LABEL]
    assert names.is_dns1123_label("a" * 64) == ["must be no more than 63 characters"]


def test_qualified_names_and_prefixes() -> None:
    assert names.is_qualified_name("headwater.dev/flow-run") == []
    assert names.is_qualified_name("/x") == ["prefix part must be non-empty"]
    assert names.is_qualified_name("Bad_Prefix/x") == ["prefix part " + DNS1123_SUBDOMAIN]
    assert names.is_qualified_name("x" * 64) == ["name part must be no more than 63 characters"]
    assert names.is_qualified_name("-x") == [QUALIFIED]
    assert names.is_qualified_name("a/b/c")[0].startswith("a qualified name must consist of")


def test_label_values() -> None:
    assert names.is_valid_label_value("") == []
    assert names.is_valid_label_value("v" * 64) == ["must be no more than 63 characters"]
    assert names.is_valid_label_value("bad value") == [
        "a valid label must be an empty string or consist of alphanumeric characters, '-', "
        "'_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  "
        "or 'my_value',  or '12345', regex used for validation is "
        "'(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"]


def test_config_map_keys_and_env_names() -> None:
    assert names.is_config_map_key("a.b-c_D") == []
    assert names.is_config_map_key("..x") == ["must not start with '..'"]
    assert names.is_config_map_key("a b")[0].startswith(
        "a valid config key must consist of alphanumeric characters, '-', '_' or '.'")
    assert names.is_env_var_name("1ABC") == [
        "a valid environment variable name must consist of alphabetic characters, digits, "
        "'_', '-', or '.', and must not start with a digit (e.g. 'my.env-name',  or "
        "'MY_ENV.NAME',  or 'MyEnvName1', regex used for validation is "
        "'[-._a-zA-Z][-._a-zA-Z0-9]*')"]


def test_ports() -> None:
    assert names.is_valid_port_num(0) == ["must be between 1 and 65535, inclusive"]
    assert names.is_valid_port_name("http--x") == ["must not contain consecutive hyphens"]
    assert names.is_valid_port_name("1234") == ["must contain at least one letter (a-z)"]


def test_generate_name_masks_the_trailing_dash() -> None:
    # generic.go maskTrailingDash: "ab-" is checked as "aa"; "-" alone stays invalid.
    assert names.name_is_dns_subdomain("run-", True) == []
    assert names.name_is_dns_subdomain("run-", False) == [DNS1123_SUBDOMAIN]
    assert names.name_is_path_segment("a/b", False) == ["may not contain '/'"]
    assert names.name_is_path_segment("..", False) == ["may not be '..'"]
