"""Handing one message to the configured SMTP server (blocking; run it in a worker thread)."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from iiot.config import Settings

SMTP_TIMEOUT_SECONDS = 30


def build_message(settings: Settings, *, to: str, subject: str, body: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = to
    message["Subject"] = subject
    message.set_content(body)
    return message


def send(settings: Settings, message: EmailMessage) -> None:
    """Deliver `message` to the SMTP relay; raises on any refusal or network failure."""
    assert settings.smtp_host is not None
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password or "")
        smtp.send_message(message)
