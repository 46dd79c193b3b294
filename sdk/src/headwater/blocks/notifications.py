"""Notification blocks: send a subject and a body to Slack, Microsoft Teams, PagerDuty,
any JSON webhook or an SMTP server (Prefect's ``prefect.blocks.notifications``).

Each is a :class:`~headwater.blocks.core.Block`, saved and loaded like any other, with
its webhook URL, routing key or password in a top-level ``SecretStr`` field so the store
keeps it apart (docs/notifications.md)::

    SlackWebhook.load("oncall").notify("orders failed", "run orders-7 crashed")

What it must respect:

* One ``notify`` is one attempt. Failure raises
  :class:`~headwater.exceptions.NotificationError`, whose ``retryable``, ``status`` and
  ``retry_after`` tell the caller (the Automation controller, a flow) whether and when to
  try again; retrying is the caller's decision.
* No secret in an error or a log line: messages name the block type, the block and the
  receiver's status, never the URL, the routing key or the password, and what the
  receiver answered passes through the block's own secret values and
  :func:`headwater.secrets.redact` first.
* ``idempotency_key`` reaches the receivers that can drop a duplicate with it: PagerDuty
  (``dedup_key``), a custom webhook (``Idempotency-Key`` header and the ``{{
  idempotency_key }}`` placeholder), email (``Message-ID``). Slack and Teams have no
  such field; the key does not reach them.
* ``import headwater`` stays cheap: this module is imported only when a notification
  block is used, and it imports :mod:`urllib.request`, :mod:`smtplib`, :mod:`ssl` and
  :mod:`json` only when a message is sent. Standard library only: no new dependency.
* Called directly from an ``async def``, ``notify`` (and ``PagerDutyEventsV2.resolve``)
  return a coroutine, as Prefect 3's do and as ``Block.load`` does here; ``anotify``
  always does. Both send from a worker thread, never blocking the event loop.
"""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, JsonValue, SecretStr, field_validator, model_validator

from headwater import secrets
from headwater.blocks.core import Block
from headwater.exceptions import NotificationError
from headwater.utilities.asyncutils import called_from_coroutine

if TYPE_CHECKING:
    import urllib.request
    from email.message import EmailMessage

__all__ = [
    "CustomWebhook",
    "EmailSMTP",
    "MicrosoftTeamsWebhook",
    "NotificationBlock",
    "PagerDutyEventsV2",
    "SlackWebhook",
]

logger = logging.getLogger("headwater.notifications")

_EXCERPT = 200
"""Characters of a receiver's error answer kept in a NotificationError's message."""

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
"""An HTTP field name: RFC 9110 section 5.1, a ``token``."""

_VISIBLE_ASCII = re.compile(r"^[\x21-\x7e]+$")

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_PLACEHOLDER_NAMES = ("subject", "body", "idempotency_key")

_FORBIDDEN_HEADERS = frozenset({"content-length", "host", "transfer-encoding", "connection",
                                "idempotency-key"})
"""Headers the request itself sets: a custom value would corrupt it or the key."""


def _truncate(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _hashed_key(key: str) -> str:
    import hashlib

    return hashlib.sha256(key.encode()).hexdigest()


def _check_http_url(value: str) -> str | None:
    """Why ``value`` is no URL to send to (``None`` when it is one). Never quotes it."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL with a host"
    if any(char.isspace() for char in value):
        return "must not contain whitespace"
    return None


def _secret_url_validator(value: SecretStr) -> SecretStr:
    problem = _check_http_url(value.get_secret_value())
    if problem is not None:
        raise ValueError(f"{problem} (the value is not shown: it is a secret)")
    return value


def _subject_and_body(subject: str | None, body: str | None) -> tuple[Any, Any]:
    """``notify(text)`` (Prefect's one-argument call) is a body without a subject."""
    if body is None:
        return "", "" if subject is None else subject
    return "" if subject is None else subject, body


class NotificationBlock(Block):
    """A block that sends a message: ``notify(subject, body)``.

    Subclasses implement :meth:`_send`; this class checks the arguments, runs it and
    keeps secrets out of the errors it raises.
    """

    # A validation error would otherwise quote the input: a webhook URL, a routing key.
    model_config = ConfigDict(extra="allow", hide_input_in_errors=True)

    _block_schema_capabilities: ClassVar[list[str] | None] = ["notify"]

    timeout_seconds: float = Field(
        default=10, gt=0,
        description="Seconds to wait for the receiver to connect and to answer.")

    # --- public API ------------------------------------------------------------------

    def notify(self, subject: str | None = None, body: str | None = None, *,
               idempotency_key: str | None = None, _sync: bool | None = None) -> None:
        """Send ``subject`` and ``body``; raise
        :class:`~headwater.exceptions.NotificationError` when it was not delivered.

        ``idempotency_key`` names this message: sending it again with the same key lets a
        receiver that supports it (PagerDuty, a custom webhook, email clients) drop the
        duplicate. Called directly from an ``async def``, returns a coroutine to await.

        Prefect's calls work too: ``notify("text")`` sends ``text`` as the body with no
        subject, and ``notify(body=..., subject=...)`` as named (Prefect's positional
        order is ``(body, subject)``; here the subject comes first). ``subject`` and
        ``body`` cannot both be empty.
        """
        if _sync is False or (_sync is None and called_from_coroutine()):
            coroutine: Any = self.anotify(subject, body, idempotency_key=idempotency_key)
            return coroutine  # type: ignore[no-any-return]
        self._notify(*_subject_and_body(subject, body), idempotency_key)
        return None

    async def anotify(self, subject: str | None = None, body: str | None = None, *,
                      idempotency_key: str | None = None) -> None:
        """:meth:`notify` as a coroutine (sent from a worker thread)."""
        import asyncio

        await asyncio.to_thread(self._notify, *_subject_and_body(subject, body),
                                idempotency_key)

    # --- for subclasses --------------------------------------------------------------

    def _send(self, subject: str, body: str, idempotency_key: str | None) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement _send")

    def _notify(self, subject: str, body: str, idempotency_key: str | None) -> None:
        self._check_message(subject, body, idempotency_key)
        self._send(subject, body, idempotency_key)

    def _check_message(self, subject: str, body: str, idempotency_key: str | None) -> None:
        if not isinstance(subject, str) or not isinstance(body, str):
            raise self._error("subject and body must be strings", retryable=False)
        if not subject.strip() and not body.strip():
            raise self._error("subject and body are both empty: give at least one",
                              retryable=False)
        if idempotency_key is not None and not (
                isinstance(idempotency_key, str) and _VISIBLE_ASCII.match(idempotency_key)):
            raise self._error("idempotency_key must be a non-empty string of visible ASCII "
                              "characters (no spaces or line breaks)", retryable=False)

    def _label(self) -> str:
        name = self._block_document_name
        return f"{type(self).__name__} {name!r}" if name else f"{type(self).__name__} (unsaved)"

    def _secret_values(self) -> list[str]:
        """This block's secret values, and the path and query of its secret URLs (a
        receiver or proxy may echo those alone), to mask in anything it reports."""
        from urllib.parse import urlsplit

        values: list[str] = []
        for _, _, value in self._document_fields():
            if isinstance(value, SecretStr):
                raw = value.get_secret_value()
                values.append(raw)
                try:
                    parts = urlsplit(raw)
                except ValueError:
                    continue
                values.extend(part for part in (parts.path, parts.query) if len(part) >= 8)
        return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)

    def _redact(self, text: str) -> str:
        for value in self._secret_values():
            text = text.replace(value, "********")
        return secrets.redact(text)

    def _error(self, what: str, *, retryable: bool, status: int | None = None,
               retry_after: float | None = None) -> NotificationError:
        return NotificationError(self._redact(f"{self._label()}: {what}"),
                                 retryable=retryable, status=status, retry_after=retry_after)

    def _post_json(self, url: str, payload: Any, *, method: str = "POST",
                   headers: dict[str, str] | None = None) -> int:
        """Send ``payload`` as JSON to ``url``; the HTTP status of a 2xx answer, else
        :class:`NotificationError`."""
        import json

        problem = _check_http_url(url)
        if problem is not None:
            raise self._error(f"the URL {problem}; save the block with a valid one",
                              retryable=False)
        data = json.dumps(payload, ensure_ascii=False).encode()
        all_headers = {"Content-Type": "application/json; charset=utf-8",
                       "User-Agent": "headwater-notifications"}
        all_headers.update(headers or {})
        status = _HTTPSender(self).send(url, method, data, all_headers)
        logger.debug("%s delivered a notification (HTTP %d)", self._label(), status)
        return status


class _HTTPSender:
    """One HTTP request for a block, its failures turned into NotificationErrors."""

    def __init__(self, block: NotificationBlock) -> None:
        self.block = block

    def send(self, url: str, method: str, data: bytes, headers: dict[str, str]) -> int:
        import http.client
        import urllib.error
        import urllib.request

        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with _opener().open(request, timeout=self.block.timeout_seconds) as response:
                response.read(65536)
                return int(response.status)
        except urllib.error.HTTPError as exc:
            raise self._http_error(exc) from None
        except urllib.error.URLError as exc:
            raise self._unreachable(exc.reason) from None
        except (OSError, ValueError) as exc:
            raise self._unreachable(exc) from None
        except http.client.HTTPException as exc:
            raise self.block._error(f"the receiver's answer was not HTTP "
                                    f"({type(exc).__name__}); retry later",
                                    retryable=True) from None

    def _http_error(self, exc: Any) -> NotificationError:
        status = int(exc.code)
        reason = str(getattr(exc, "reason", "") or "")
        try:
            answer = exc.read(4096).decode("utf-8", "replace")
        except Exception:  # the answer is only an excerpt for the message
            answer = ""
        finally:
            exc.close()
        excerpt = " ".join(answer.split())
        detail = f": {_truncate(excerpt, _EXCERPT)}" if excerpt else ""
        head = f"the receiver answered HTTP {status} {reason}".rstrip()
        retry_after = (_retry_after(exc.headers.get("Retry-After"))
                       if status in (429, 503) else None)
        if status == 429 or status >= 500:
            wait = f"; retry after {retry_after:g} s" if retry_after is not None else ""
            return self.block._error(f"{head} (retryable{wait}){detail}", retryable=True,
                                     status=status, retry_after=retry_after)
        return self.block._error(f"{head}{detail}; {_fix_for(status)}", retryable=False,
                                 status=status, retry_after=retry_after)

    def _unreachable(self, reason: object) -> NotificationError:
        import ssl

        if isinstance(reason, ssl.SSLCertVerificationError):
            return self.block._error(
                "the receiver's TLS certificate does not verify "
                f"({reason.verify_message}); fix the certificate or the URL's host",
                retryable=False)
        if isinstance(reason, TimeoutError):
            return self.block._error(
                f"no answer within timeout_seconds={self.block.timeout_seconds:g} "
                "(retryable)", retryable=True)
        if isinstance(reason, ValueError):
            return self.block._error(f"the request could not be built ({reason}); check "
                                     "the block's URL and headers", retryable=False)
        text = reason.strerror if isinstance(reason, OSError) and reason.strerror else reason
        return self.block._error(f"could not reach the receiver ({type(reason).__name__}: "
                                 f"{text}) (retryable)", retryable=True)


def _fix_for(status: int) -> str:
    if status in (401, 403):
        return "the receiver refused the credentials: check the block's secret fields"
    if status in (404, 410):
        return ("the webhook no longer exists at this URL: create a new one and save the "
                "block with its URL")
    if 300 <= status < 400:
        return "the URL redirects elsewhere: save the block with the final URL"
    return "the receiver refused the message: check the block's fields"


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date
    (RFC 9110 section 10.2.3); ``None`` when absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    from datetime import UTC, datetime
    from email.utils import parsedate_to_datetime

    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _opener() -> urllib.request.OpenerDirector:
    """An opener that does not follow redirects: urllib would resend a POST as a GET
    without its body, so a redirect is reported instead."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    return urllib.request.build_opener(NoRedirect())


# --- Slack ---------------------------------------------------------------------------


def _slack_escape(text: str) -> str:
    """Slack's three control characters in message text (its formatting reference:
    ``&``, ``<``, ``>``), so a run's message cannot ping ``<!channel>`` or fake a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackWebhook(NotificationBlock):
    """A Slack incoming webhook: the subject as a header, the body as a section.

    Slack has no idempotency key: a message sent again is shown again.
    """

    _block_type_name = "Slack Webhook"
    _documentation_url = "https://api.slack.com/messaging/webhooks"

    url: SecretStr = Field(description="The incoming webhook URL "
                           "(https://hooks.slack.com/services/...); a secret.")

    _validate_url = field_validator("url")(_secret_url_validator)

    def _send(self, subject: str, body: str, idempotency_key: str | None) -> None:
        self._post_json(self.url.get_secret_value(), slack_payload(subject, body))


def slack_payload(subject: str, body: str) -> dict[str, Any]:
    """Slack's incoming-webhook JSON: ``text`` (the notification and fallback text, with
    the subject in bold) and Block Kit ``blocks``: a ``header`` (plain text, at most 150
    characters) and a ``section`` (mrkdwn, at most 3000)."""
    subject = " ".join(subject.split())
    blocks: list[dict[str, Any]] = []
    if subject:
        blocks.append({"type": "header",
                       "text": {"type": "plain_text", "text": _truncate(subject, 150)}})
    if body.strip():
        blocks.append({"type": "section",
                       "text": {"type": "mrkdwn", "text": _truncate(_slack_escape(body), 3000)}})
    lines = [f"*{_slack_escape(subject)}*" if subject else "", _slack_escape(body)]
    text = "\n".join(line for line in lines if line.strip())
    return {"text": _truncate(text, 40000), "blocks": blocks}


# --- Microsoft Teams ----------------------------------------------------------------


class MicrosoftTeamsWebhook(NotificationBlock):
    """A Microsoft Teams Workflows webhook ("When a Teams webhook request is
    received"): the message is an Adaptive Card, the format Workflows accept (Office 365
    connectors and their MessageCard format are retired).

    Teams has no idempotency key: a message sent again is shown again.
    """

    _block_type_name = "Microsoft Teams Webhook"
    _block_type_slug = "ms-teams-webhook"
    _documentation_url = ("https://learn.microsoft.com/microsoftteams/platform/"
                          "webhooks-and-connectors/how-to/connectors-using")

    url: SecretStr = Field(description="The workflow's webhook URL; a secret.")

    _validate_url = field_validator("url")(_secret_url_validator)

    def _send(self, subject: str, body: str, idempotency_key: str | None) -> None:
        self._post_json(self.url.get_secret_value(), teams_payload(subject, body))


def teams_payload(subject: str, body: str) -> dict[str, Any]:
    """A Teams message with one Adaptive Card attachment (schema 1.4, what Teams
    renders): the subject as a bold heading ``TextBlock``, the body as a wrapped one. The
    body is cut to 20,000 characters: Teams refuses cards over about 28 KB."""
    subject = " ".join(subject.split())
    card_body: list[dict[str, Any]] = []
    if subject:
        card_body.append({"type": "TextBlock", "text": _truncate(subject, 500),
                          "weight": "Bolder", "size": "Medium", "style": "heading",
                          "wrap": True})
    if body.strip():
        card_body.append({"type": "TextBlock", "text": _truncate(body, 20000), "wrap": True})
    card = {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
            "type": "AdaptiveCard", "version": "1.4", "body": card_body,
            "msteams": {"width": "Full"}}
    return {"type": "message",
            "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                             "contentUrl": None, "content": card}]}


# --- PagerDuty -----------------------------------------------------------------------


class PagerDutyEventsV2(NotificationBlock):
    """PagerDuty's Events API v2: ``notify`` triggers an alert, ``resolve`` resolves it.

    ``idempotency_key`` becomes the event's ``dedup_key``: triggering again with the same
    key adds to the open alert instead of opening another, and ``resolve(key)`` closes
    it. A key longer than PagerDuty's 255 characters is replaced by its SHA-256 (hex),
    in ``notify`` and ``resolve`` alike.
    """

    _block_type_name = "PagerDuty Events v2"
    _block_type_slug = "pagerduty-events-v2"
    _documentation_url = "https://developer.pagerduty.com/docs/events-api-v2/overview"

    routing_key: SecretStr = Field(description="The integration key of an Events API v2 "
                                   "integration on a service or ruleset; a secret.")
    severity: Literal["critical", "error", "warning", "info"] = "error"
    source: str = Field(default="headwater", min_length=1,
                        description="The affected system (payload.source).")
    component: str | None = None
    group: str | None = None
    event_class: str | None = Field(default=None, description="payload.class")
    url: str = Field(default="https://events.pagerduty.com/v2/enqueue",
                     description="The enqueue endpoint (https://events.eu.pagerduty.com/"
                     "v2/enqueue for the EU service region).")

    @field_validator("url")
    @classmethod
    def _validate_endpoint(cls, value: str) -> str:
        problem = _check_http_url(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    def _send(self, subject: str, body: str, idempotency_key: str | None) -> None:
        self._post_json(self.url, self.trigger_event(subject, body, idempotency_key))

    def trigger_event(self, subject: str, body: str,
                      idempotency_key: str | None) -> dict[str, Any]:
        """The ``trigger`` event ``notify`` sends: the summary is the subject (else the
        body), cut to 1024 characters; the body is in ``custom_details``."""
        from datetime import UTC, datetime

        summary = " ".join(subject.split()) or " ".join(body.split())
        payload: dict[str, Any] = {
            "summary": _truncate(summary, 1024), "source": self.source,
            "severity": self.severity,
            "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "custom_details": {"subject": subject, "body": body}}
        for key, value in (("component", self.component), ("group", self.group),
                           ("class", self.event_class)):
            if value:
                payload[key] = value
        event: dict[str, Any] = {"routing_key": self.routing_key.get_secret_value(),
                                 "event_action": "trigger", "payload": payload}
        if idempotency_key is not None:
            event["dedup_key"] = pagerduty_dedup_key(idempotency_key)
        return event

    def resolve(self, dedup_key: str, *, _sync: bool | None = None) -> None:
        """Resolve the alert ``notify(..., idempotency_key=dedup_key)`` triggered.
        Called directly from an ``async def``, returns a coroutine to await."""
        if _sync is False or (_sync is None and called_from_coroutine()):
            coroutine: Any = self.aresolve(dedup_key)
            return coroutine  # type: ignore[no-any-return]
        self._resolve(dedup_key)
        return None

    async def aresolve(self, dedup_key: str) -> None:
        """:meth:`resolve` as a coroutine (sent from a worker thread)."""
        import asyncio

        await asyncio.to_thread(self._resolve, dedup_key)

    def _resolve(self, dedup_key: str) -> None:
        if not (isinstance(dedup_key, str) and dedup_key.strip()):
            raise self._error("resolve needs the dedup_key of the alert to resolve",
                              retryable=False)
        self._post_json(self.url, {"routing_key": self.routing_key.get_secret_value(),
                                   "event_action": "resolve",
                                   "dedup_key": pagerduty_dedup_key(dedup_key)})


def pagerduty_dedup_key(idempotency_key: str) -> str:
    """The ``dedup_key`` sent for ``idempotency_key``: itself, or its SHA-256 (hex) when
    longer than PagerDuty's limit of 255 characters."""
    return idempotency_key if len(idempotency_key) <= 255 else _hashed_key(idempotency_key)


# --- custom webhook ------------------------------------------------------------------


def _default_json_body() -> JsonValue:
    return {"subject": "{{ subject }}", "body": "{{ body }}",
            "idempotency_key": "{{ idempotency_key }}"}


def _placeholders(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_PLACEHOLDER.findall(value))
    if isinstance(value, dict):
        return set().union(*(_placeholders(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(_placeholders(item) for item in value))
    return set()


def render_json_body(template: Any, values: dict[str, str | None]) -> Any:
    """``template`` with ``{{ name }}`` replaced in every string value (not in keys).

    A string that is one placeholder alone becomes the value itself, so a missing
    ``idempotency_key`` is JSON ``null`` there; inside longer text it is empty. Plain
    replacement, not a template language: nothing else in the string is interpreted.
    """
    if isinstance(template, str):
        whole = _PLACEHOLDER.fullmatch(template.strip())
        if whole is not None and template.strip() == template:
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(lambda match: values[match.group(1)] or "", template)
    if isinstance(template, dict):
        return {key: render_json_body(item, values) for key, item in template.items()}
    if isinstance(template, list):
        return [render_json_body(item, values) for item in template]
    return template


class CustomWebhook(NotificationBlock):
    """Any HTTP endpoint that takes JSON: ``json_body`` is a JSON value whose strings may
    hold ``{{ subject }}``, ``{{ body }}`` and ``{{ idempotency_key }}``.

    With an ``idempotency_key``, the request carries ``Idempotency-Key: <key>`` so the
    receiver can drop a duplicate. A credential goes in ``auth_header_value`` (a secret
    field), sent as the header ``auth_header_name``; ``headers`` are not secret.
    """

    _block_type_name = "Custom Webhook"

    url: SecretStr = Field(description="The endpoint; a secret (it often holds a token).")
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    json_body: JsonValue = Field(default_factory=_default_json_body,
                                 description="The JSON to send, with placeholders.")
    headers: dict[str, str] = Field(default_factory=dict,
                                    description="Extra request headers (not secret).")
    auth_header_name: str = "Authorization"
    auth_header_value: SecretStr | None = Field(
        default=None, description="The value of the header auth_header_name, such as "
        "'Bearer <token>'; a secret.")

    _validate_url = field_validator("url")(_secret_url_validator)

    @field_validator("json_body")
    @classmethod
    def _known_placeholders(cls, value: JsonValue) -> JsonValue:
        unknown = _placeholders(value) - set(_PLACEHOLDER_NAMES)
        if unknown:
            raise ValueError(f"unknown placeholder(s) {sorted(unknown)}: the placeholders "
                             f"are {', '.join('{{ ' + n + ' }}' for n in _PLACEHOLDER_NAMES)}")
        return value

    @model_validator(mode="after")
    def _valid_headers(self) -> CustomWebhook:
        names = [*self.headers, self.auth_header_name]
        for name in names:
            if not _HEADER_NAME.match(name):
                raise ValueError(f"header name {name!r} is not an HTTP field name "
                                 "(letters, digits and !#$%&'*+.^_`|~-)")
            if name.lower() in _FORBIDDEN_HEADERS:
                raise ValueError(f"header {name!r} is set by the request itself; remove it")
        for name, value in self.headers.items():
            if "\r" in value or "\n" in value:
                raise ValueError(f"header {name!r}: a value cannot contain a line break")
        if self.auth_header_value is not None:
            if self.auth_header_name.lower() in {n.lower() for n in self.headers}:
                raise ValueError(f"header {self.auth_header_name!r} is in headers and is "
                                 "auth_header_name: keep it in one place")
            if any(c in self.auth_header_value.get_secret_value() for c in "\r\n"):
                raise ValueError("auth_header_value cannot contain a line break")
        return self

    def _send(self, subject: str, body: str, idempotency_key: str | None) -> None:
        payload = render_json_body(self.json_body, {
            "subject": subject, "body": body, "idempotency_key": idempotency_key})
        headers = dict(self.headers)
        if self.auth_header_value is not None:
            headers[self.auth_header_name] = self.auth_header_value.get_secret_value()
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        self._post_json(self.url.get_secret_value(), payload, method=self.method,
                        headers=headers)


# --- email ---------------------------------------------------------------------------

_DOT_ATOM = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
"""RFC 5322 section 3.2.3's dot-atom-text: what the left of a Message-ID may be."""

_DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}


def message_id(idempotency_key: str) -> str:
    """The ``Message-ID`` an email sent with ``idempotency_key`` carries:
    ``<key@headwater>``, or ``<sha256-of-key@headwater>`` when the key holds characters
    a Message-ID cannot (RFC 5322 dot-atom-text)."""
    left = idempotency_key if _DOT_ATOM.match(idempotency_key) else _hashed_key(idempotency_key)
    return f"<{left}@headwater>"


class EmailSMTP(NotificationBlock):
    """Email through an SMTP server: the subject as ``Subject``, the body as plain text.

    ``security``: ``starttls`` (the default; port 587) upgrades the connection before
    logging in, ``ssl`` connects over TLS (port 465), ``none`` sends in clear (port 25;
    refused with a password). With an ``idempotency_key``, the message's ``Message-ID``
    is ``<key@headwater>``, so a mail client or archive that drops duplicate IDs shows it
    once.
    """

    _block_type_name = "Email (SMTP)"
    _block_type_slug = "email-smtp"

    host: str = Field(min_length=1)
    port: int | None = Field(default=None, ge=1, le=65535,
                             description="Default: 587 (starttls), 465 (ssl), 25 (none).")
    username: str | None = None
    password: SecretStr | None = Field(default=None, description="A secret.")
    security: Literal["starttls", "ssl", "none"] = "starttls"
    from_address: str
    to_addresses: list[str] = Field(min_length=1)
    tls_ca_file: str | None = Field(
        default=None, description="A PEM file of CA certificates to verify the server "
        "with, for a relay with a private CA (default: the system's CAs).")

    @field_validator("from_address", "to_addresses")
    @classmethod
    def _addresses(cls, value: str | list[str]) -> str | list[str]:
        for address in [value] if isinstance(value, str) else value:
            if "@" not in address or any(c in address for c in "\r\n,<>"):
                raise ValueError(f"{address!r} is not one email address (name@domain)")
        return value

    @model_validator(mode="after")
    def _credentials(self) -> EmailSMTP:
        if (self.password is None) != (self.username is None):
            raise ValueError("username and password go together: set both or neither")
        if self.password is not None and self.security == "none":
            raise ValueError("security 'none' would send the password in clear: use "
                             "'starttls' or 'ssl'")
        return self

    def email_message(self, subject: str, body: str,
                      idempotency_key: str | None) -> EmailMessage:
        """The message ``notify`` sends."""
        from email import policy
        from email.message import EmailMessage
        from email.utils import formatdate, make_msgid

        # RFC 5322's hard limit of 998 characters a line, not the folding default of 78:
        # a Message-ID folded onto a second line is valid, but some tools compare it raw.
        message = EmailMessage(policy=policy.SMTP.clone(max_line_length=998))
        message["Subject"] = " ".join(subject.split())
        message["From"] = self.from_address
        message["To"] = ", ".join(self.to_addresses)
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = (message_id(idempotency_key) if idempotency_key is not None
                                 else make_msgid(domain="headwater"))
        message.set_content(body)
        return message

    def _send(self, subject: str, body: str, idempotency_key: str | None) -> None:
        import smtplib
        import ssl

        message = self.email_message(subject, body, idempotency_key)
        port = self.port or _DEFAULT_PORTS[self.security]
        try:
            context = ssl.create_default_context(cafile=self.tls_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise self._error(f"tls_ca_file cannot be read as PEM certificates "
                              f"({type(exc).__name__}); fix the path", retryable=False) from None
        try:
            client: smtplib.SMTP
            if self.security == "ssl":
                client = smtplib.SMTP_SSL(self.host, port, timeout=self.timeout_seconds,
                                          context=context)
            else:
                client = smtplib.SMTP(self.host, port, timeout=self.timeout_seconds)
            with client:
                if self.security == "starttls":
                    client.starttls(context=context)
                if self.username is not None and self.password is not None:
                    client.login(self.username, self.password.get_secret_value())
                refused = client.send_message(message)
        except Exception as exc:  # every failure becomes a NotificationError
            raise self._smtp_error(exc) from None
        if refused:
            codes = {address: code for address, (code, _) in refused.items()}
            raise self._error(f"the server refused {sorted(codes)} (replies "
                              f"{sorted(set(codes.values()))}); the others received it",
                              retryable=all(400 <= c < 500 for c in codes.values()),
                              status=max(codes.values()))
        logger.debug("%s delivered a notification to %d recipient(s)", self._label(),
                     len(self.to_addresses))

    def _smtp_error(self, exc: Exception) -> NotificationError:
        import smtplib
        import ssl

        where = f"{self.host}:{self.port or _DEFAULT_PORTS[self.security]}"
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            return self._error(f"{where} refused every recipient (replies "
                               f"{sorted(set(codes))})",
                               retryable=all(400 <= c < 500 for c in codes),
                               status=max(codes) if codes else None)
        if isinstance(exc, smtplib.SMTPResponseException):
            code = int(exc.smtp_code)
            raw = exc.smtp_error
            text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
            transient = 400 <= code < 500
            step = ("login" if isinstance(exc, smtplib.SMTPAuthenticationError)
                    else "sending")
            fix = "" if transient else (
                "; check username and password" if step == "login"
                else "; check the addresses and the server's rules")
            return self._error(f"{where} answered {code} while {step}: "
                               f"{_truncate(' '.join(text.split()), _EXCERPT)}"
                               f"{' (retryable)' if transient else fix}",
                               retryable=transient, status=code)
        if isinstance(exc, smtplib.SMTPNotSupportedError):
            return self._error(f"{where} does not support what the block asks "
                               f"({exc}); check security and username", retryable=False)
        if isinstance(exc, ssl.SSLCertVerificationError):
            return self._error(f"{where}'s TLS certificate does not verify "
                               f"({exc.verify_message}); set tls_ca_file to its CA, or "
                               "fix the host name", retryable=False)
        if isinstance(exc, ssl.SSLError):
            return self._error(f"TLS with {where} failed ({exc.reason}); check security "
                               "and port (ssl is usually 465, starttls 587)",
                               retryable=False)
        if isinstance(exc, TimeoutError):
            return self._error(f"{where} did not answer within timeout_seconds="
                               f"{self.timeout_seconds:g} (retryable)", retryable=True)
        if isinstance(exc, smtplib.SMTPServerDisconnected | OSError):
            cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            return self._error(f"could not talk to {where} ({type(exc).__name__}: {cause}) "
                               "(retryable)", retryable=True)
        return self._error(f"sending through {where} failed ({type(exc).__name__}: {exc})",
                           retryable=isinstance(exc, smtplib.SMTPException))
