"""Real receivers for notification tests: an HTTP server on 127.0.0.1 that checks each
provider's documented payload and answers as the provider does, and an SMTP server
(aiosmtpd) with plain, STARTTLS or implicit TLS and optional login.

No mock of urllib or smtplib: the blocks under test open real sockets to these servers.
The payload checks follow each provider's published format (cited on each function);
a payload that breaks it is answered 400, as the real service answers, so a test that
expects delivery fails on a malformed payload. ``HTTPReceiver.script`` queues answers
(500, 429 with ``Retry-After``, a hang) for one path, ahead of the normal ones.
"""

from __future__ import annotations

import asyncio
import datetime
import email
import email.policy
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

# --- payload formats -----------------------------------------------------------------


def slack_problems(body: Any) -> list[str]:
    """Slack incoming webhooks (api.slack.com/messaging/webhooks, Block Kit reference):
    ``text`` is a string (required with blocks, as the notification fallback); ``blocks``
    is a list of at most 50 layout blocks; a ``header`` holds ``plain_text`` of at most
    150 characters, a ``section`` a ``text`` object of at most 3000."""
    problems: list[str] = []
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    if not isinstance(body.get("text"), str) or not body["text"].strip():
        problems.append("text must be a non-empty string")
    blocks = body.get("blocks", [])
    if not isinstance(blocks, list) or len(blocks) > 50:
        return [*problems, "blocks must be a list of at most 50 blocks"]
    for index, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, dict) else None
        text = block.get("text") if isinstance(block, dict) else None
        if kind not in ("header", "section", "divider", "context"):
            problems.append(f"blocks[{index}].type {kind!r} is not a layout block")
            continue
        if kind == "header" and not (isinstance(text, dict) and text.get("type") == "plain_text"
                                     and isinstance(text.get("text"), str)
                                     and 0 < len(text["text"]) <= 150):
            problems.append(f"blocks[{index}]: a header needs plain_text of 1-150 characters")
        if kind == "section" and not (isinstance(text, dict)
                                      and text.get("type") in ("plain_text", "mrkdwn")
                                      and isinstance(text.get("text"), str)
                                      and 0 < len(text["text"]) <= 3000):
            problems.append(f"blocks[{index}]: a section needs text of 1-3000 characters")
    return problems


def teams_problems(body: Any) -> list[str]:
    """Teams Workflows webhooks ("When a Teams webhook request is received"; Microsoft's
    "Create and send messages"): a ``message`` whose ``attachments`` hold an Adaptive
    Card (``application/vnd.microsoft.card.adaptive``), ``content`` of type
    ``AdaptiveCard`` with a ``version`` and a ``body`` of elements (adaptivecards.io
    schema); MessageCard payloads are not accepted by Workflows."""
    if not isinstance(body, dict) or body.get("type") != "message":
        return ["type must be 'message'"]
    attachments = body.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return ["attachments must be a non-empty list"]
    problems: list[str] = []
    for index, attachment in enumerate(attachments):
        if attachment.get("contentType") != "application/vnd.microsoft.card.adaptive":
            problems.append(f"attachments[{index}].contentType is not an Adaptive Card")
        card = attachment.get("content")
        if not isinstance(card, dict) or card.get("type") != "AdaptiveCard":
            problems.append(f"attachments[{index}].content.type must be 'AdaptiveCard'")
            continue
        if not isinstance(card.get("version"), str):
            problems.append(f"attachments[{index}].content.version must be a string")
        elements = card.get("body")
        if not isinstance(elements, list) or not elements:
            problems.append(f"attachments[{index}].content.body must be a non-empty list")
            continue
        for element in elements:
            if element.get("type") == "TextBlock" and not isinstance(element.get("text"), str):
                problems.append("a TextBlock needs a string text")
    return problems


PAGERDUTY_SEVERITIES = ("critical", "error", "warning", "info")


def pagerduty_problems(body: Any) -> list[str]:
    """PagerDuty Events API v2 (developer.pagerduty.com, "Send an Alert Event"):
    ``routing_key`` and ``event_action`` (trigger, acknowledge, resolve) are required,
    ``dedup_key`` is at most 255 characters and required to acknowledge or resolve; a
    trigger's ``payload`` needs ``summary`` (at most 1024), ``source`` and ``severity``
    (critical, error, warning, info); ``timestamp`` is ISO 8601."""
    if not isinstance(body, dict):
        return ["body is not a JSON object"]
    problems: list[str] = []
    if not isinstance(body.get("routing_key"), str) or not body["routing_key"]:
        problems.append("routing_key is required")
    action = body.get("event_action")
    if action not in ("trigger", "acknowledge", "resolve"):
        problems.append(f"event_action {action!r} is not trigger, acknowledge or resolve")
    dedup = body.get("dedup_key")
    if dedup is not None and not (isinstance(dedup, str) and 0 < len(dedup) <= 255):
        problems.append("dedup_key must be a string of at most 255 characters")
    if action in ("acknowledge", "resolve") and dedup is None:
        problems.append(f"{action} needs a dedup_key")
    if action == "trigger":
        payload = body.get("payload")
        if not isinstance(payload, dict):
            return [*problems, "payload is required to trigger"]
        summary = payload.get("summary")
        if not (isinstance(summary, str) and 0 < len(summary) <= 1024):
            problems.append("payload.summary must be 1-1024 characters")
        if not (isinstance(payload.get("source"), str) and payload["source"]):
            problems.append("payload.source is required")
        if payload.get("severity") not in PAGERDUTY_SEVERITIES:
            problems.append(f"payload.severity {payload.get('severity')!r} is not one of "
                            f"{PAGERDUTY_SEVERITIES}")
        if "timestamp" in payload:
            try:
                datetime.datetime.fromisoformat(payload["timestamp"])
            except (TypeError, ValueError):
                problems.append("payload.timestamp is not ISO 8601")
        for key in ("component", "group", "class"):
            if key in payload and not isinstance(payload[key], str):
                problems.append(f"payload.{key} must be a string")
        if "custom_details" in payload and not isinstance(payload["custom_details"], dict):
            problems.append("payload.custom_details must be an object")
    return problems


PROVIDERS = {"slack": slack_problems, "teams": teams_problems, "pagerduty": pagerduty_problems,
             "custom": lambda body: []}
"""What each provider checks in a JSON body."""

# --- HTTP ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """One scripted HTTP answer; ``hang`` answers nothing until the receiver closes."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    method: str
    path: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class HTTPReceiver:
    """An HTTP server on 127.0.0.1 that records requests and answers them as ``provider``
    (``route``) does: Slack 200 ``ok``, Teams 202, PagerDuty 202 with its JSON, custom
    200; 400 with the problems when the payload breaks the provider's format, or when a
    JSON body is sent without ``Content-Type: application/json``."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.routes: dict[str, str] = {}
        self.scripts: dict[str, list[Answer]] = {}
        self.problems: list[str] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_port}{path}"

    def route(self, path: str, provider: str) -> str:
        """Answer ``path`` as ``provider``; its URL."""
        self.routes[path] = provider
        return self.url(path)

    def script(self, path: str, *answers: Answer) -> None:
        """Answer the next requests to ``path`` with ``answers``, in order."""
        with self._lock:
            self.scripts.setdefault(path, []).extend(answers)

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, request: Received) -> Answer:
        with self._lock:
            self.requests.append(request)
            script = self.scripts.get(request.path)
            if script:
                return script.pop(0)
        provider = self.routes.get(request.path, "custom")
        problems: list[str] = []
        if not request.headers.get("content-type", "").startswith("application/json"):
            problems.append("Content-Type is not application/json")
        try:
            body = request.json()
        except ValueError:
            problems.append("the body is not JSON")
        else:
            problems.extend(PROVIDERS[provider](body))
        if problems:
            self.problems.extend(problems)
            return Answer(400, "; ".join(problems).encode())
        if provider == "slack":
            return Answer(200, b"ok")
        if provider == "teams":
            return Answer(202)
        if provider == "pagerduty":
            return Answer(202, json.dumps({"status": "success", "message": "Event processed",
                                           "dedup_key": body.get("dedup_key", "generated")}
                                          ).encode(), {"Content-Type": "application/json"})
        return Answer(200, b"{}", {"Content-Type": "application/json"})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Received(self.command, self.path,
                                   {k.lower(): v for k, v in self.headers.items()},
                                   self.rfile.read(length))
                answer = receiver._answer(request)
                if answer.hang:
                    receiver._closing.wait()
                    return
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_POST = do_PUT = do_PATCH = do_GET = _any

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def http_receiver() -> Iterator[HTTPReceiver]:
    """A fixture body: ``receiver = pytest.fixture(http_receiver)``."""
    receiver = HTTPReceiver()
    try:
        yield receiver
    finally:
        receiver.close()


# --- TLS -----------------------------------------------------------------------------


@dataclass(frozen=True)
class TLSFiles:
    """A throw-away CA and a server certificate it signed, for 127.0.0.1 and localhost."""

    ca_file: Path
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def make_tls_files(directory: Path) -> TLSFiles:
    """Generate the CA and the server certificate with ``cryptography``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "headwater test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    files = TLSFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    return files


# --- SMTP ----------------------------------------------------------------------------


class SMTPReceiver:
    """An aiosmtpd server on 127.0.0.1, in its own thread and event loop.

    ``tls``: ``None`` (plain), ``"starttls"`` (STARTTLS offered and required before
    MAIL) or ``"ssl"`` (TLS from the first byte). ``login``: ``(user, password)`` the
    server accepts (AUTH only after TLS). ``reply``: the answer to DATA (default
    ``250 OK``); ``refuse``: recipients answered ``550`` at RCPT.
    """

    def __init__(self, tls_files: TLSFiles | None = None, tls: str | None = None,
                 login: tuple[str, str] | None = None) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Envelope] = []
        self.logins: list[str] = []
        self.reply = "250 OK"
        self.refuse: set[str] = set()  # recipients answered 550 at RCPT
        self._login = login
        context = tls_files.server_context() if tls_files is not None else None
        self._loop = asyncio.new_event_loop()

        def factory() -> SMTP:
            return SMTP(self, hostname="headwater-test",
                        tls_context=context if tls == "starttls" else None,
                        require_starttls=tls == "starttls",
                        authenticator=self._authenticate if login else None,
                        # aiosmtpd knows of STARTTLS, not of a TLS listener: there the
                        # connection is encrypted before it starts.
                        auth_require_tls=tls == "starttls")

        self._server = self._loop.run_until_complete(self._loop.create_server(
            factory, "127.0.0.1", 0, ssl=context if tls == "ssl" else None))
        self.port: int = self._server.sockets[0].getsockname()[1]
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _authenticate(self, server: SMTP, session: Session, envelope: Envelope,
                      mechanism: str, auth_data: Any) -> AuthResult:
        assert self._login is not None
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == self._login[0]
              and auth_data.password.decode() == self._login[1])
        if ok:
            self.logins.append(auth_data.login.decode())
        return AuthResult(success=ok, handled=False)

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope,
                          address: str, rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if not self.reply.startswith("250"):
            return self.reply
        self.envelopes.append(envelope)
        raw = envelope.original_content or b""
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return self.reply

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            await self._server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()
