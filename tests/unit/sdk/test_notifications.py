"""Notification blocks (issue #15, item 1) against real receivers: an HTTP server that
checks Slack's, Teams', PagerDuty's and a custom webhook's payloads against the
providers' documented formats and answers as they do, and an aiosmtpd server receiving
email in clear, over STARTTLS and over TLS (tests/support/notification_receivers.py).

What a user relies on: a delivered message has the provider's format; a failure says
whether to retry and when, and never shows a webhook URL, routing key or password; the
idempotency key reaches the receivers that can use it; the blocks save and load with
their secrets kept apart, and work from flow code, sync and async.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import subprocess
import sys
import traceback
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from headwater import flow, task
from headwater.blocks import stores
from headwater.blocks.core import Block
from headwater.blocks.notifications import (
    CustomWebhook,
    EmailSMTP,
    MicrosoftTeamsWebhook,
    NotificationBlock,
    PagerDutyEventsV2,
    SlackWebhook,
    message_id,
    pagerduty_dedup_key,
)
from headwater.exceptions import NotificationError
from notification_receivers import (
    Answer,
    HTTPReceiver,
    SMTPReceiver,
    TLSFiles,
    http_receiver,
    make_tls_files,
    pagerduty_problems,
    slack_problems,
    teams_problems,
)
from pydantic import ValidationError

SLACK_PATH = "/services/T0001/B0002/slacktoken7f3a9c21"
TEAMS_PATH = "/workflows/abc/triggers/manual/paths/invoke?sig=teamssig6d1e"
PD_KEY = "R0UTINGKEY0123456789abcdef012345"
CUSTOM_PATH = "/hooks/custom-4b8e6d40f1"
AUTH = "Bearer custom-token-92c1d7"
PASSWORD = "smtp-pass-51ae09"


@pytest.fixture(autouse=True)
def fresh_stores() -> None:
    stores.reset()


receiver = pytest.fixture(http_receiver)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def secret_values() -> list[str]:
    return [SLACK_PATH, "slacktoken7f3a9c21", "teamssig6d1e", PD_KEY, CUSTOM_PATH, AUTH,
            "custom-token-92c1d7", PASSWORD]


def assert_no_secret(error: BaseException, caplog: pytest.LogCaptureFixture) -> None:
    texts = [str(error), repr(error), "".join(traceback.format_exception(error)),
             caplog.text]
    for text in texts:
        for value in secret_values():
            assert value not in text, (value, text)


# --- payloads as the providers document them ------------------------------------------


def test_slack_gets_its_documented_payload(receiver: HTTPReceiver) -> None:
    url = receiver.route(SLACK_PATH, "slack")
    SlackWebhook(url=url).notify("orders failed", "run <orders-7> & friends crashed",
                                 idempotency_key="auto/orders-7/Failed")

    [request] = receiver.requests
    assert (request.method, request.path) == ("POST", SLACK_PATH)
    assert request.headers["content-type"].startswith("application/json")
    body = request.json()
    assert slack_problems(body) == []
    assert body["blocks"][0] == {"type": "header",
                                 "text": {"type": "plain_text", "text": "orders failed"}}
    # Slack's control characters are escaped: a run's message cannot ping or fake a link.
    assert body["blocks"][1]["text"] == {"type": "mrkdwn",
                                         "text": "run &lt;orders-7&gt; &amp; friends crashed"}
    assert body["text"].startswith("*orders failed*\n")
    # Slack has no idempotency key: the key reaches it nowhere.
    assert "auto/orders-7/Failed" not in request.body.decode()
    assert "idempotency-key" not in request.headers


def test_slack_limits_are_kept_for_long_messages(receiver: HTTPReceiver) -> None:
    url = receiver.route(SLACK_PATH, "slack")
    SlackWebhook(url=url).notify("s" * 400, "b" * 5000)
    body = receiver.requests[0].json()
    assert slack_problems(body) == []
    assert body["blocks"][1]["text"]["text"].endswith("…")


def test_teams_gets_an_adaptive_card(receiver: HTTPReceiver) -> None:
    url = receiver.route(TEAMS_PATH, "teams")
    MicrosoftTeamsWebhook(url=url).notify("orders failed", "run orders-7 crashed")

    [request] = receiver.requests
    body = request.json()
    assert request.method == "POST"
    assert teams_problems(body) == []
    card = body["attachments"][0]["content"]
    assert [element["text"] for element in card["body"]] == ["orders failed",
                                                             "run orders-7 crashed"]
    assert card["body"][0]["weight"] == "Bolder"


def test_pagerduty_trigger_and_resolve_with_the_dedup_key(receiver: HTTPReceiver) -> None:
    url = receiver.route("/v2/enqueue", "pagerduty")
    block = PagerDutyEventsV2(routing_key=PD_KEY, url=url, severity="critical",
                              source="orders-deployment", component="warehouse",
                              group="etl", event_class="flow run failed")
    block.notify("orders failed", "run orders-7 crashed", idempotency_key="auto/orders-7")
    block.resolve("auto/orders-7")

    trigger, resolve = (request.json() for request in receiver.requests)
    assert pagerduty_problems(trigger) == []
    assert pagerduty_problems(resolve) == []
    assert trigger["routing_key"] == PD_KEY
    assert trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == "auto/orders-7"
    payload = trigger["payload"]
    assert {k: payload[k] for k in ("summary", "source", "severity", "component", "group",
                                    "class")} == {
        "summary": "orders failed", "source": "orders-deployment", "severity": "critical",
        "component": "warehouse", "group": "etl", "class": "flow run failed"}
    assert payload["custom_details"]["body"] == "run orders-7 crashed"
    assert datetime.fromisoformat(payload["timestamp"]).tzinfo is not None
    assert resolve == {"routing_key": PD_KEY, "event_action": "resolve",
                       "dedup_key": "auto/orders-7"}


def test_pagerduty_without_a_key_and_with_a_long_one(receiver: HTTPReceiver) -> None:
    url = receiver.route("/v2/enqueue", "pagerduty")
    block = PagerDutyEventsV2(routing_key=PD_KEY, url=url)
    block.notify("x" * 2000, "")
    long_key = "k" * 300
    block.notify("s", "b", idempotency_key=long_key)
    block.resolve(long_key)

    first, second, resolve = (request.json() for request in receiver.requests)
    assert receiver.problems == []
    assert "dedup_key" not in first
    assert len(first["payload"]["summary"]) == 1024
    assert second["dedup_key"] == resolve["dedup_key"] == pagerduty_dedup_key(long_key)
    assert len(second["dedup_key"]) == 64


def test_custom_webhook_renders_its_template_and_sends_the_key(
        receiver: HTTPReceiver) -> None:
    url = receiver.url(CUSTOM_PATH)
    block = CustomWebhook(
        url=url, method="PUT", headers={"X-Team": "data"}, auth_header_value=AUTH,
        json_body={"title": "{{subject}}", "detail": {"text": "{{ body }} ({{ subject }})"},
                   "key": "{{ idempotency_key }}", "tags": ["headwater", 3, None, True]})
    block.notify("orders failed", 'say "hi"', idempotency_key="auto/orders-7")
    block.notify("again", "no key")

    keyed, unkeyed = receiver.requests
    assert keyed.method == "PUT"
    assert keyed.headers["authorization"] == AUTH
    assert keyed.headers["x-team"] == "data"
    assert keyed.headers["idempotency-key"] == "auto/orders-7"
    assert keyed.json() == {"title": "orders failed",
                            "detail": {"text": 'say "hi" (orders failed)'},
                            "key": "auto/orders-7", "tags": ["headwater", 3, None, True]}
    assert "idempotency-key" not in unkeyed.headers
    assert unkeyed.json()["key"] is None  # a lone placeholder without a value is null


def test_custom_webhook_default_body(receiver: HTTPReceiver) -> None:
    CustomWebhook(url=receiver.url(CUSTOM_PATH)).notify("s", "b", idempotency_key="k-1")
    assert receiver.requests[0].json() == {"subject": "s", "body": "b",
                                           "idempotency_key": "k-1"}


@pytest.mark.parametrize(("fields", "message"), [
    ({"json_body": {"a": "{{ run_name }}"}}, "unknown placeholder"),
    ({"headers": {"Bad Name": "x"}}, "not an HTTP field name"),
    ({"headers": {"Content-Length": "1"}}, "set by the request itself"),
    ({"headers": {"X-A": "a\r\nInjected: 1"}}, "line break"),
    ({"headers": {"authorization": "x"}, "auth_header_value": AUTH}, "keep it in one place"),
])
def test_custom_webhook_refuses_bad_fields(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message) as caught:
        CustomWebhook(url="https://example.com" + CUSTOM_PATH, **fields)
    assert CUSTOM_PATH not in str(caught.value)


# --- failures -----------------------------------------------------------------------


@pytest.mark.parametrize("block_type", [SlackWebhook, MicrosoftTeamsWebhook, CustomWebhook])
def test_a_500_is_retryable(receiver: HTTPReceiver, block_type: type[NotificationBlock],
                            caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.script(SLACK_PATH, Answer(500, b"internal error at " + SLACK_PATH.encode()))
    with pytest.raises(NotificationError) as caught:
        block_type(url=receiver.url(SLACK_PATH)).notify("s", "b")
    error = caught.value
    assert (error.retryable, error.status, error.retry_after) == (True, 500, None)
    assert block_type.__name__ in str(error)
    assert "500" in str(error)
    assert "internal error at ********" in str(error)  # the echoed URL path is masked
    assert_no_secret(error, caplog)


def test_a_429_gives_retry_after_in_seconds(receiver: HTTPReceiver,
                                            caplog: pytest.LogCaptureFixture) -> None:
    receiver.script(SLACK_PATH, Answer(429, b"rate_limited", {"Retry-After": "30"}))
    with pytest.raises(NotificationError) as caught:
        SlackWebhook(url=receiver.url(SLACK_PATH)).notify("s", "b")
    assert (caught.value.retryable, caught.value.status, caught.value.retry_after) == (
        True, 429, 30.0)
    assert_no_secret(caught.value, caplog)


def test_a_503_gives_retry_after_from_an_http_date(receiver: HTTPReceiver) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    receiver.script("/v2/enqueue", Answer(503, b"", {"Retry-After": when}))
    block = PagerDutyEventsV2(routing_key=PD_KEY, url=receiver.url("/v2/enqueue"))
    with pytest.raises(NotificationError) as caught:
        block.notify("s", "b")
    assert caught.value.retryable
    assert caught.value.status == 503
    assert caught.value.retry_after is not None
    assert 3000 < caught.value.retry_after <= 3600


@pytest.mark.parametrize(("status", "fix"), [
    (400, "refused the message"), (403, "refused the credentials"),
    (404, "no longer exists"), (410, "no longer exists")])
def test_other_4xx_are_not_retryable(receiver: HTTPReceiver, status: int, fix: str,
                                     caplog: pytest.LogCaptureFixture) -> None:
    receiver.script(SLACK_PATH, Answer(status, b"invalid_payload"))
    with pytest.raises(NotificationError) as caught:
        SlackWebhook(url=receiver.url(SLACK_PATH)).notify("s", "b")
    assert (caught.value.retryable, caught.value.status) == (False, status)
    assert fix in str(caught.value)
    assert "invalid_payload" in str(caught.value)
    assert_no_secret(caught.value, caplog)


def test_a_redirect_is_reported_not_followed(receiver: HTTPReceiver) -> None:
    receiver.script(SLACK_PATH, Answer(302, b"", {"Location": receiver.url("/elsewhere")}))
    with pytest.raises(NotificationError) as caught:
        SlackWebhook(url=receiver.url(SLACK_PATH)).notify("s", "b")
    assert (caught.value.retryable, caught.value.status) == (False, 302)
    assert [request.path for request in receiver.requests] == [SLACK_PATH]


def test_a_receiver_that_never_answers_is_a_retryable_timeout(
        receiver: HTTPReceiver, caplog: pytest.LogCaptureFixture) -> None:
    receiver.script(CUSTOM_PATH, Answer(hang=True))
    block = CustomWebhook(url=receiver.url(CUSTOM_PATH), auth_header_value=AUTH,
                          timeout_seconds=0.5)
    with pytest.raises(NotificationError) as caught:
        block.notify("s", "b", idempotency_key="k")
    assert (caught.value.retryable, caught.value.status) == (True, None)
    assert "timeout_seconds=0.5" in str(caught.value)
    assert_no_secret(caught.value, caplog)


def test_nothing_listening_is_retryable(receiver: HTTPReceiver) -> None:
    url = receiver.url(SLACK_PATH)
    receiver.close()
    with pytest.raises(NotificationError) as caught:
        SlackWebhook(url=url).notify("s", "b")
    assert (caught.value.retryable, caught.value.status) == (True, None)
    assert "could not reach" in str(caught.value)


def test_a_bad_url_or_message_is_not_retryable() -> None:
    with pytest.raises(ValidationError) as caught:
        SlackWebhook(url="hooks.slack.com" + SLACK_PATH)
    assert SLACK_PATH not in str(caught.value)
    block = SlackWebhook(url="https://hooks.example.com" + SLACK_PATH)
    for subject, body, key in (("", " ", None), ("s", "b", "has space"), ("s", "b", "")):
        with pytest.raises(NotificationError) as error:
            block.notify(subject, body, idempotency_key=key)
        assert error.value.retryable is False


def test_the_error_names_a_saved_block_and_survives_pickling(receiver: HTTPReceiver) -> None:
    SlackWebhook(url=receiver.url(SLACK_PATH)).save("oncall")
    receiver.script(SLACK_PATH, Answer(429, b"", {"Retry-After": "5"}))
    with pytest.raises(NotificationError) as caught:
        SlackWebhook.load("oncall").notify("s", "b")
    assert str(caught.value).startswith("SlackWebhook 'oncall': ")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (str(copy), copy.retryable, copy.status, copy.retry_after) == (
        str(caught.value), True, 429, 5.0)


def test_a_log_line_on_delivery_holds_no_secret(receiver: HTTPReceiver,
                                                caplog: pytest.LogCaptureFixture) -> None:
    # The handler sits on the module's own logger: a flow run earlier in the session may
    # have stopped ``headwater`` loggers propagating to the root, where caplog listens.
    notifications_logger = logging.getLogger("headwater.notifications")
    notifications_logger.addHandler(caplog.handler)
    try:
        caplog.set_level(logging.DEBUG, logger="headwater.notifications")
        receiver.route(SLACK_PATH, "slack")
        SlackWebhook(url=receiver.url(SLACK_PATH)).notify("s", "b")
    finally:
        notifications_logger.removeHandler(caplog.handler)
    assert "delivered" in caplog.text
    for value in secret_values():
        assert value not in caplog.text


# --- email --------------------------------------------------------------------------


def email_block(port: int, **fields: Any) -> EmailSMTP:
    return EmailSMTP(host="127.0.0.1", port=port, from_address="headwater@example.com",
                     to_addresses=["oncall@example.com", "data@example.com"], **fields)


def test_email_in_clear() -> None:
    server = SMTPReceiver()
    try:
        email_block(server.port, security="none").notify(
            "orders failed", "run orders-7 crashed\nsee the UI", idempotency_key="auto/orders-7")
    finally:
        server.close()
    [message] = server.messages
    assert message["Subject"] == "orders failed"
    assert message["From"] == "headwater@example.com"
    assert message["Message-ID"] == "<auto/orders-7@headwater>"
    assert message.get_content().splitlines() == ["run orders-7 crashed", "see the UI"]
    assert server.envelopes[0].rcpt_tos == ["oncall@example.com", "data@example.com"]


def test_email_over_starttls_with_login(tls_files: TLSFiles,
                                        caplog: pytest.LogCaptureFixture) -> None:
    server = SMTPReceiver(tls_files, tls="starttls", login=("etl", PASSWORD))
    try:
        block = email_block(server.port, username="etl", password=PASSWORD,
                            tls_ca_file=str(tls_files.ca_file))
        block.notify("subject: with a colon", "body", idempotency_key="auto:orders-7@Failed")
        with pytest.raises(NotificationError) as caught:
            email_block(server.port, username="etl", password="wrong-" + PASSWORD,
                        tls_ca_file=str(tls_files.ca_file)).notify("s", "b")
    finally:
        server.close()
    assert server.logins == ["etl"]
    [message] = server.messages
    assert message["Subject"] == "subject: with a colon"
    # ':' and '@' cannot be in a Message-ID's left part: the key's SHA-256 is there.
    assert message["Message-ID"] == message_id("auto:orders-7@Failed")
    assert message["Message-ID"].startswith("<")
    assert message["Message-ID"].count("@") == 1
    assert (caught.value.retryable, caught.value.status) == (False, 535)
    assert "check username and password" in str(caught.value)
    assert_no_secret(caught.value, caplog)


def test_email_over_tls(tls_files: TLSFiles) -> None:
    server = SMTPReceiver(tls_files, tls="ssl", login=("etl", PASSWORD))
    try:
        email_block(server.port, security="ssl", username="etl", password=PASSWORD,
                    tls_ca_file=str(tls_files.ca_file)).notify("s", "b")
    finally:
        server.close()
    assert len(server.messages) == 1
    assert server.logins == ["etl"]


def test_email_refuses_an_unverified_certificate(tls_files: TLSFiles) -> None:
    server = SMTPReceiver(tls_files, tls="starttls")
    try:
        with pytest.raises(NotificationError) as caught:
            email_block(server.port).notify("s", "b")
    finally:
        server.close()
    assert caught.value.retryable is False
    assert "tls_ca_file" in str(caught.value)
    assert server.messages == []


@pytest.mark.parametrize(("reply", "retryable"), [
    ("451 4.3.0 try again later", True), ("554 5.7.1 rejected", False)])
def test_email_server_replies(reply: str, retryable: bool) -> None:
    server = SMTPReceiver()
    server.reply = reply
    try:
        with pytest.raises(NotificationError) as caught:
            email_block(server.port, security="none").notify("s", "b")
    finally:
        server.close()
    assert (caught.value.retryable, caught.value.status) == (retryable, int(reply[:3]))


def test_email_with_one_recipient_refused() -> None:
    server = SMTPReceiver()
    server.refuse.add("data@example.com")
    try:
        with pytest.raises(NotificationError) as caught:
            email_block(server.port, security="none").notify("s", "b", idempotency_key="k-1")
    finally:
        server.close()
    assert (caught.value.retryable, caught.value.status) == (False, 550)
    assert "data@example.com" in str(caught.value)
    assert "the others received it" in str(caught.value)
    assert server.envelopes[0].rcpt_tos == ["oncall@example.com"]


def test_email_refuses_a_password_in_clear_or_alone() -> None:
    with pytest.raises(ValidationError, match="in clear") as caught:
        email_block(25, security="none", username="etl", password=PASSWORD)
    assert PASSWORD not in str(caught.value)
    with pytest.raises(ValidationError, match="go together") as caught:
        email_block(587, password=PASSWORD)
    assert PASSWORD not in str(caught.value)
    with pytest.raises(ValidationError, match="go together"):
        email_block(587, username="etl")


# --- the store and flow code --------------------------------------------------------


def every_block() -> dict[str, Block]:
    return {
        "slack": SlackWebhook(url="https://hooks.example.com" + SLACK_PATH),
        "teams": MicrosoftTeamsWebhook(url="https://teams.example.com" + TEAMS_PATH),
        "pagerduty": PagerDutyEventsV2(routing_key=PD_KEY, source="orders"),
        "custom": CustomWebhook(url="https://hooks.example.com" + CUSTOM_PATH,
                                auth_header_value=AUTH, headers={"X-Team": "data"}),
        "email": email_block(587, username="etl", password=PASSWORD),
    }


def test_every_block_round_trips_with_its_secrets_apart(headwater_home: Path) -> None:
    blocks = every_block()
    for name, block in blocks.items():
        block.save(name)
    documents = "".join(p.read_text() for p in (headwater_home / "blocks").glob("*.json")
                        if not p.name.endswith(".secrets.json"))
    for value in secret_values():
        assert value not in documents
    for name, block in blocks.items():
        loaded = Block.load(name)
        assert type(loaded) is type(block)
        assert loaded.model_dump(mode="python") == block.model_dump(mode="python")
        for field in ("url", "routing_key", "auth_header_value", "password"):
            if hasattr(block, field):
                assert getattr(loaded, field) == getattr(block, field)


def test_slack_webhook_from_a_flow_sync_and_async(receiver: HTTPReceiver) -> None:
    SlackWebhook(url=receiver.route(SLACK_PATH, "slack")).save("oncall")

    @task
    def alert(message: str) -> None:
        SlackWebhook.load("oncall").notify("orders", message)

    @flow
    def orders() -> None:
        alert("sync task")

    @flow
    async def orders_async() -> None:
        block = await SlackWebhook.load("oncall")
        await block.notify("orders", "async flow")
        await block.anotify("orders", "anotify")

    orders()
    asyncio.run(orders_async())
    assert [request.json()["blocks"][1]["text"]["text"] for request in receiver.requests] == [
        "sync task", "async flow", "anotify"]
    assert receiver.problems == []


def test_a_failed_notification_fails_the_flow_without_its_url(
        receiver: HTTPReceiver) -> None:
    receiver.script(SLACK_PATH, Answer(500))
    SlackWebhook(url=receiver.url(SLACK_PATH)).save("oncall")

    @flow
    def orders() -> None:
        SlackWebhook.load("oncall").notify("orders", "failed")

    state = orders(return_state=True)
    assert state.is_failed()
    assert "HTTP 500" in (state.message or "")
    assert SLACK_PATH not in (state.message or "")


def test_prefect_style_calls(receiver: HTTPReceiver) -> None:
    block = SlackWebhook(url=receiver.route(SLACK_PATH, "slack"))
    block.notify("the body alone")  # Prefect's notify(body)
    block.notify(body="named body", subject="named subject")
    first, second = (request.json() for request in receiver.requests)
    assert [b["type"] for b in first["blocks"]] == ["section"]
    assert first["text"] == "the body alone"
    assert second["blocks"][0]["text"]["text"] == "named subject"
    assert second["blocks"][1]["text"]["text"] == "named body"
    with pytest.raises(NotificationError, match="both empty"):
        block.notify()


def test_importing_the_blocks_sends_nothing_and_loads_no_client() -> None:
    """The SDK's cold start: the HTTP and SMTP clients load only when a message is sent."""
    code = ("import sys, headwater.blocks.notifications; "
            "print(sorted(m for m in ('urllib.request', 'http.client', 'smtplib', 'ssl') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
