"""Password hashing (argon2id) and the password rules."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from iiot.errors import ValidationFailed

_hasher = PasswordHasher()
# Verified against when the account does not exist, so that timing does not reveal it. Made on
# first use, with the hasher then in use: hashing at import would cost every process (the
# command line, each server worker) a production-cost hash it may never need.
_DUMMY_HASH: str | None = None

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def _dummy_hash() -> str:
    global _DUMMY_HASH  # noqa: PLW0603 - computed once, on first use
    if _DUMMY_HASH is None:
        _DUMMY_HASH = _hasher.hash("iiot-timing-equaliser-not-a-password")
    return _DUMMY_HASH


def prepare_dummy_hash() -> None:
    """Make the dummy hash now (a server does at start-up), so that not even the first login
    of the process for an unknown account takes longer than one check."""
    _dummy_hash()


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; spends the same work when there is no hash."""
    try:
        return (
            _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
        )
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def check_password_rules(password: str, email: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            f"password must be at least {MIN_PASSWORD_LENGTH} characters",
            errors=[{"field": "password", "message": "too short"}],
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationFailed(
            "password is too long", errors=[{"field": "password", "message": "too long"}]
        )
    if password.strip().lower() == email.strip().lower():
        raise ValidationFailed(
            "password must not be the e-mail address",
            errors=[{"field": "password", "message": "equals the e-mail"}],
        )
