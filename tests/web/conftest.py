from tests.fixtures.live_server import live_server
from tests.mail.smtp_server import smtp_inbox
from tests.web.browser import browser

__all__ = ["browser", "live_server", "smtp_inbox"]
