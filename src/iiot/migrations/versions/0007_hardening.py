"""hardening: password-reset tokens; limits bounded in the database too

Revision ID: 0007
Revises: 0006

- password_reset_tokens (platform table, like refresh_tokens): a single-use token per request,
  stored as its SHA-256 digest, with its expiry; looked up before anyone is signed in.
- max_retention_days of tiers and tenants lies in 1..36500 (100 years); larger values made
  every ingest's date arithmetic overflow. Values already stored above it are lowered to it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MAX_RETENTION_DAYS = 36_500


def upgrade() -> None:
    op.create_table(
        "password_reset_tokens",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "user_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey("users.id", ondelete="cascade"),
            nullable=False,
        ),
        sa.Column("token_hash", sa.LargeBinary(32), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_password_reset_tokens_token_hash", "password_reset_tokens", ["token_hash"], unique=True
    )
    op.create_index("ix_password_reset_tokens_user_id", "password_reset_tokens", ["user_id"])
    for table in ("tiers", "tenants"):
        op.execute(
            f"update {table} set max_retention_days = {MAX_RETENTION_DAYS} "  # noqa: S608
            f"where max_retention_days > {MAX_RETENTION_DAYS}"
        )
        op.execute(
            f"update {table} set max_retention_days = 1 where max_retention_days < 1"  # noqa: S608
        )
        op.create_check_constraint(
            op.f(f"ck_{table}_max_retention_days_range"),
            table,
            f"max_retention_days between 1 and {MAX_RETENTION_DAYS}",
        )


def downgrade() -> None:
    for table in ("tiers", "tenants"):
        op.drop_constraint(op.f(f"ck_{table}_max_retention_days_range"), table, type_="check")
    op.drop_table("password_reset_tokens")
