"""Password hashing (argon2id) and the password rules."""

from __future__ import annotations

import base64
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from argon2.low_level import ARGON2_VERSION

from iiot.errors import ValidationFailed

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256


def unmatchable_hash(hasher: PasswordHasher) -> str:
    """An encoded hash with `hasher`'s parameters that no password matches: its salt and digest
    are random bytes. Checking a password against it costs what checking against a real hash
    made by `hasher` costs (the work is set by the parameters, not by what was hashed), and
    making it costs nothing, where hashing a string would cost every process a
    production-cost hash (a third of a second of CPU) whether or not anyone signs in."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode().rstrip("=")

    return (
        f"$argon2{hasher.type.name.lower()}$v={ARGON2_VERSION}"
        f"$m={hasher.memory_cost},t={hasher.time_cost},p={hasher.parallelism}"
        f"${b64(secrets.token_bytes(hasher.salt_len))}${b64(secrets.token_bytes(hasher.hash_len))}"
    )


_hasher = PasswordHasher()
# Verified against when the account does not exist, so that timing does not reveal it.
_DUMMY_HASH = unmatchable_hash(_hasher)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches; spends the same work when there is no hash."""
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
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
