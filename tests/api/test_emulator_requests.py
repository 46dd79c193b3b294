"""What the emulator checks of a request itself, as the Kubernetes 1.32 API server does:
``dryRun``, ``fieldValidation``, patch media types, the namespace, unconditional updates,
the body's type meta, and the ``Warning`` headers of ``fieldValidation=Warn``."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from headwater_dev.emulator import BackgroundEmulator

FLOWS = "/apis/headwater.dev/v1alpha1/namespaces/default/flows"
FLOW = {"apiVersion": "headwater.dev/v1alpha1", "kind": "Flow", "metadata": {"name": "hello"},
        "spec": {"image": "ghcr.io/acme/flows:1", "entrypoint": "flows/hello.py:hello"}}


class Answer:
    def __init__(self, code: int, body: dict[str, Any], warnings: list[str]) -> None:
        self.code, self.body, self.warnings = code, body, warnings


@pytest.fixture
def api() -> Iterator[BackgroundEmulator]:
    with BackgroundEmulator() as emulator:
        yield emulator


def send(api: BackgroundEmulator, method: str, path: str, body: Any = None, *,
         query: dict[str, str] | None = None,
         content_type: str = "application/json") -> Answer:
    url = api.url + path + ("?" + urllib.parse.urlencode(query) if query else "")
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Answer(response.status, json.loads(response.read()),
                          response.headers.get_all("Warning") or [])
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, json.loads(exc.read()), exc.headers.get_all("Warning") or [])


def test_dry_run_answers_as_if_stored_and_stores_nothing(api: BackgroundEmulator) -> None:
    answer = send(api, "POST", FLOWS, FLOW, query={"dryRun": "All"})
    assert answer.code == 201
    assert answer.body["metadata"]["name"] == "hello"
    assert send(api, "GET", f"{FLOWS}/hello").code == 404
    refused = send(api, "POST", FLOWS, FLOW, query={"dryRun": "Yes"})
    assert (refused.code, refused.body["message"]) == (422, (
        'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: '
        '[]string{"Yes"}: supported values: "All"'))


def test_field_validation_warns_by_default_refuses_when_strict(api: BackgroundEmulator) -> None:
    typo = {**FLOW, "spec": {**FLOW["spec"], "retrys": 3}}
    strict = send(api, "POST", FLOWS, typo, query={"fieldValidation": "Strict"})
    assert (strict.code, strict.body["message"]) == (400, (
        'Flow in version "v1alpha1" cannot be handled as a Flow: strict decoding error: '
        'unknown field "spec.retrys"'))
    warned = send(api, "POST", FLOWS, typo)
    assert warned.code == 201
    assert warned.warnings == ['299 - "unknown field \\"spec.retrys\\""']
    assert "retrys" not in warned.body["spec"]  # pruned, as stored
    bogus = send(api, "POST", FLOWS, FLOW, query={"fieldValidation": "Loose"})
    assert (bogus.code, bogus.body["message"]) == (422, (
        'CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: '
        '"Loose": supported values: "", "Ignore", "Strict", "Warn"'))


def test_custom_resources_take_no_strategic_merge_patch(api: BackgroundEmulator) -> None:
    assert send(api, "POST", FLOWS, FLOW).code == 201
    answer = send(api, "PATCH", f"{FLOWS}/hello", {"spec": {"retries": 1}},
                  content_type="application/strategic-merge-patch+json")
    assert (answer.code, answer.body["message"]) == (415, (
        "the body of the request was in an unknown format - accepted media types include: "
        "application/json-patch+json, application/merge-patch+json, "
        "application/apply-patch+yaml"))
    merged = send(api, "PATCH", f"{FLOWS}/hello", {"spec": {"retries": 1}},
                  content_type="application/merge-patch+json")
    assert (merged.code, merged.body["spec"]["retries"]) == (200, 1)


def test_a_custom_resource_needs_its_kind_and_a_resource_version_to_be_replaced(
        api: BackgroundEmulator) -> None:
    kindless = {key: value for key, value in FLOW.items() if key != "kind"}
    missing = send(api, "POST", FLOWS, kindless)
    assert missing.code == 400
    assert missing.body["message"].startswith("Object 'Kind' is missing in '{")
    assert send(api, "POST", FLOWS, FLOW).code == 201
    unconditional = send(api, "PUT", f"{FLOWS}/hello", FLOW)
    assert (unconditional.code, unconditional.body["message"]) == (422, (
        'flows.headwater.dev "hello" is invalid: metadata.resourceVersion: Invalid value: '
        "0x0: must be specified for an update"))


def test_objects_are_created_only_in_namespaces_that_exist(api: BackgroundEmulator) -> None:
    answer = send(api, "POST", FLOWS.replace("/default/", "/nowhere/"), FLOW)
    assert (answer.code, answer.body["message"]) == (404, 'namespaces "nowhere" not found')
