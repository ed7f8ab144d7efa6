"""What other domains may change of an account: its last sign-in and its password (for the
login, the password change and the password reset of `iiot.auth`), and nothing else.

Each function changes a row the caller read through `iiot.users.lookup` in the same session
(`account_for_update` where the password changes); the caller's transaction writes it.
"""

from __future__ import annotations

import anyio

from iiot.identity.passwords import check_password_rules, hash_password
from iiot.models.base import utcnow
from iiot.models.users import User


def record_login(user: User) -> None:
    """The account signed in now."""
    user.last_login_at = utcnow()


async def set_password(user: User, password: str) -> None:
    """Give the account a new password, after checking it against the password rules (422)."""
    check_password_rules(password, user.email)
    user.password_hash = await anyio.to_thread.run_sync(hash_password, password)
    user.updated_at = utcnow()
