"""Notification rules without servers: fixed texts, signatures, sealed addresses, retries."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import httpx
import pytest
from cryptography.fernet import Fernet, MultiFernet
from huddle_runtime.notifications import (
    DELIVERY_HEADER,
    KINDS,
    SIGNATURE_HEADER,
    EmailAddress,
    InboxAddress,
    Notification,
    NotificationSettings,
    SealingError,
    SmtpChannel,
    WebhookAddress,
    WebhookChannel,
    message_for,
    open_channels,
    render,
    seal_channels,
    signature_header,
    verify_signature,
)
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

BASE = "https://huddle.example"
PEER = "p_" + "ab" * 16
DEADLINE = datetime(2031, 5, 4, 13, 7, tzinfo=timezone(timedelta(hours=2)))

# The whole vocabulary of every text: fixed words, the link, the deadline.
TEXT = re.compile(
    r"(You have a new peer-support request\."
    r"|A peer-support request is still waiting for your answer\."
    r"|A peer-support request needs a coordinator's attention\."
    r"|A colleague in your team may welcome a check-in\.)"
    r" Open: https://huddle\.example/[A-Za-z0-9/_-]*"
    r"( Please respond by \d{4}-\d\d-\d\d \d\d:\d\d UTC\.)?"
)


def offer(**changes: object) -> Notification:
    fields: dict[str, object] = {
        "kind": "offer",
        "recipient": PEER,
        "network_id": "north-coast",
        "hospital_id": "st-mary",
        "link": "/offers/3f9c1c2e-0d5b-4b7e-9a51-2f3d4c5b6a7e",
        "respond_by": DEADLINE,
    }
    return Notification.model_validate({**fields, **changes})


def test_notifications_carry_a_link_and_no_clinical_or_identifying_content() -> None:
    for kind in KINDS:
        for respond_by in (DEADLINE, None):
            n = offer(kind=kind, respond_by=respond_by)
            message = message_for(uuid.uuid4(), n, base_url=BASE)
            assert TEXT.fullmatch(message.text), message.text
            assert message.subject.startswith("Huddle: ")
            body = json.loads(message.webhook_body())
            assert set(body) == {"id", "kind", "link", "respond_by", "text"}
            everything = message.text + message.subject + message.webhook_body().decode()
            for identifying in (n.recipient, n.network_id, "st-mary"):
                assert identifying not in everything
    first = render(offer(), base_url=BASE + "/")
    assert first.text == (
        "You have a new peer-support request. Open: "
        "https://huddle.example/offers/3f9c1c2e-0d5b-4b7e-9a51-2f3d4c5b6a7e"
        " Please respond by 2031-05-04 11:07 UTC."
    )
    assert first.subject == "Huddle: new peer-support request"

    # Nothing else can carry words: the link is a bare path, and there is no other field.
    for link in (
        "/offers/Jane Doe",
        "/offers/x?patient=Jane",
        "/offers/x#fall",
        "/offers/../admin",
        "/offers/x\n",
        "offers/x",
        "https://evil.example/x",
        "/" + "a" * 600,
    ):
        with pytest.raises(ValidationError):
            offer(link=link)
    for extra in ({"note": "patient fell in ward 3"}, {"text": "Call Jane"}, {"subject": "x"}):
        with pytest.raises(ValidationError):
            offer(**extra)
    for recipient in ("jane.doe@st-mary.org", "Jane Doe", "coordinators:St Mary", "p_123"):
        with pytest.raises(ValidationError):
            offer(recipient=recipient)
    for bad in ({"kind": "free_text"}, {"respond_by": datetime(2031, 1, 1)}, {"network_id": "A B"}):
        with pytest.raises(ValidationError):
            offer(**bad)
    assert offer(recipient="coordinators:st-mary").recipient == "coordinators:st-mary"


@given(st.one_of(st.text(max_size=80), st.from_regex(r"/[A-Za-z0-9/_-]{0,80}", fullmatch=True)))
def test_any_accepted_link_renders_into_the_fixed_text(link: str) -> None:
    try:
        n = offer(link=link)
    except ValidationError:
        return
    assert re.fullmatch(r"/[A-Za-z0-9/_-]*", link)
    assert TEXT.fullmatch(render(n, base_url=BASE).text)


def test_the_email_is_generic_and_carries_the_de_duplication_id() -> None:
    message = message_for(uuid.uuid4(), offer(), base_url=BASE)
    email = SmtpChannel("127.0.0.1", 25, "huddle@huddle.example").email(message, "peer@h.example")
    assert email["Subject"] == "Huddle: new peer-support request"
    assert email[DELIVERY_HEADER] == str(message.id)
    assert str(message.id) in email["Message-ID"]
    assert email["Auto-Submitted"] == "auto-generated"
    assert email.get_content().strip() == message.text


def test_a_signature_verifies_only_the_exact_body_secret_and_recent_time() -> None:
    secret, body = "whsec-test-0123456789", b'{"id":"1"}'
    header = signature_header(secret, body, timestamp=1_700_000_000)
    expected = hmac.new(secret.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify_signature(secret, header, body, now=1_700_000_100)
    assert not verify_signature(secret, header, body + b" ", now=1_700_000_100)
    assert not verify_signature("another-secret-0123", header, body, now=1_700_000_100)
    assert not verify_signature(secret, header, body, now=1_700_000_000 + 301)
    assert not verify_signature(
        secret, header.replace("t=1700000000", "t=1700000001"), body, now=1_700_000_000
    )
    for malformed in ("", "t=x,v1=00", "v1=" + expected, "t=1700000000"):
        assert not verify_signature(secret, malformed, body, now=1_700_000_000)
    rolled = f"t=1700000000,v1={'0' * 64},v1={expected}"
    assert verify_signature(secret, rolled, body, now=1_700_000_000)


def test_sealed_channels_hide_addresses_and_stay_with_their_notification() -> None:
    key = Fernet(Fernet.generate_key())
    nid = uuid.uuid4()
    channels = [
        WebhookAddress(url="https://pager.st-mary.example/hook", secret="s3cret-s3cret-s3cret"),
        EmailAddress(to="jane.doe@st-mary.example"),
        InboxAddress(),
    ]
    sealed = seal_channels(channels, key=key, notification_id=nid)
    stored = json.dumps(sealed)
    for clear in ("jane.doe", "st-mary", "s3cret", "pager"):
        assert clear not in stored
    assert [e["channel"] for e in sealed] == ["webhook", "email", "inbox"]
    assert open_channels(sealed, key=key, notification_id=nid) == channels
    with pytest.raises(SealingError):
        open_channels(sealed, key=key, notification_id=uuid.uuid4())
    with pytest.raises(SealingError):
        open_channels(sealed, key=Fernet(Fernet.generate_key()), notification_id=nid)
    rotated = MultiFernet([Fernet(Fernet.generate_key()), key])
    assert open_channels(sealed, key=rotated, notification_id=nid) == channels


def test_addresses_refuse_plain_http_and_header_injection() -> None:
    with pytest.raises(ValidationError):
        WebhookAddress(url="http://pager.example/hook", secret="s" * 16)
    with pytest.raises(ValidationError):
        WebhookAddress(url="https://pager.example/hook", secret="short")
    assert WebhookAddress(url="http://127.0.0.1:9/hook", secret="s" * 16).url
    for to in ("a@b.example\nBcc: x@y.example", "Jane <jane@b.example>", "no-at-sign", "a@"):
        with pytest.raises(ValidationError):
            EmailAddress(to=to)


def test_settings_read_the_environment_and_refuse_development_keys_in_production(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("HUDDLE_NOTIFY_BASE_URL", "https://huddle.example/app/")
    monkeypatch.setenv("HUDDLE_NOTIFY_SMTP_HOST", "smtp.example")
    monkeypatch.setenv("HUDDLE_NOTIFY_SMTP_PASSWORD", "pw")
    monkeypatch.setenv("HUDDLE_NOTIFY_SMTP_USERNAME", "huddle")
    monkeypatch.setenv("HUDDLE_NOTIFY_MAX_ATTEMPTS", "4")
    monkeypatch.setenv("HUDDLE_NOTIFY_CHANNEL_KEY", key)
    s = NotificationSettings()
    assert (s.base_url, s.smtp_host, s.max_attempts) == (
        "https://huddle.example/app",
        "smtp.example",
        4,
    )
    assert s.smtp_password is not None and "pw" not in repr(s)
    assert s.refuse_development_defaults() is s
    with pytest.raises(ValueError, match="CHANNEL_KEY"):
        NotificationSettings(channel_key="not-a-key")
    monkeypatch.delenv("HUDDLE_NOTIFY_CHANNEL_KEY")
    with pytest.raises(ValueError, match="CHANNEL_KEY"):
        NotificationSettings().refuse_development_defaults()


class Script:
    """A fake endpoint answering with the given statuses (or raising the given errors)."""

    def __init__(self, *answers: int | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.pauses: list[float] = []

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return httpx.Response(answer)

    async def sleep(self, seconds: float) -> None:
        self.pauses.append(seconds)

    async def deliver(self, max_attempts: int = 3) -> list[tuple[str, str | None]]:
        transport = httpx.MockTransport(self.handler)
        async with httpx.AsyncClient(transport=transport) as client:
            channel = WebhookChannel(
                "https://pager.example/hook",
                "s3cret-s3cret-s3cret",
                max_attempts=max_attempts,
                backoff_seconds=0.5,
                client=client,
                sleep=self.sleep,
            )
            message = message_for(uuid.uuid4(), offer(), base_url=BASE)
            attempts = await channel.deliver(message)
        for request in self.requests:
            assert request.headers[DELIVERY_HEADER] == str(message.id)
            assert verify_signature(
                "s3cret-s3cret-s3cret", request.headers[SIGNATURE_HEADER], request.content
            )
        return [(a.outcome, a.error) for a in attempts]


async def test_the_webhook_retries_5xx_and_timeouts_with_doubling_pauses() -> None:
    script = Script(503, httpx.ReadTimeout("slow"), 200)
    assert await script.deliver() == [
        ("failed", "HTTP 503"),
        ("failed", "timeout (ReadTimeout)"),
        ("delivered", None),
    ]
    assert script.pauses == [0.5, 1.0]


async def test_the_webhook_gives_up_after_max_attempts_and_never_retries_4xx() -> None:
    down = Script(*[httpx.ConnectError("refused")] * 3)
    assert await down.deliver() == [("failed", "unreachable (ConnectError)")] * 3
    gone = Script(410, 200)
    assert await gone.deliver() == [("failed", "HTTP 410")]
    assert len(gone.requests) == 1 and gone.pauses == []


def test_the_utc_deadline_is_the_same_moment() -> None:
    n = offer(respond_by=datetime(2031, 5, 4, 11, 7, tzinfo=UTC))
    assert render(n, base_url=BASE).text.endswith("Please respond by 2031-05-04 11:07 UTC.")
