from tests.mail.smtp_server import smtp_inbox

__all__ = ["smtp_inbox"]
