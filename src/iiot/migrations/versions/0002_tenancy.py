"""tenancy: invitations, mail outbox

Revision ID: 0002
Revises: 0001

Tenant-owned table here: invitations (RLS enabled and forced). Platform table: mail_outbox
(its tenant column is `for_tenant_id`; the delivery job reads it across tenants).
Cross-tenant look-up: iiot_invitation_by_token(digest), a narrow SECURITY DEFINER function
that answers only which tenant and invitation a token digest belongs to.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from iiot.migrations.rls import disable_tenant_rls, enable_tenant_rls

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INVITATION_LOOKUP_FN = """
create function iiot_invitation_by_token(p_digest bytea)
returns table (tenant_id uuid, invitation_id uuid)
language sql stable security definer
set search_path = public, pg_temp
as $$
    select i.tenant_id, i.id
    from invitations i
    join tenants t on t.id = i.tenant_id
    where i.token_hash = p_digest and t.deleted_at is null
$$;
revoke all on function iiot_invitation_by_token(bytea) from public;
"""


def _timestamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "invitations",
        sa.Column("tenant_id", sa.UUID(), nullable=False),
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.UUID(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("invited_by", sa.UUID(), nullable=True),
        *_timestamps(),
        sa.CheckConstraint(
            "role in ('viewer','operator','developer','admin')",
            name=op.f("ck_invitations_role_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["tenant_id"],
            ["tenants.id"],
            name=op.f("fk_invitations_tenant_id_tenants"),
            ondelete="cascade",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_invitations_user_id_users"), ondelete="cascade"
        ),
        sa.ForeignKeyConstraint(
            ["invited_by"],
            ["users.id"],
            name=op.f("fk_invitations_invited_by_users"),
            ondelete="set null",
        ),
        sa.PrimaryKeyConstraint("tenant_id", "id", name=op.f("pk_invitations")),
    )
    op.create_index("ix_invitations_token_hash", "invitations", ["token_hash"], unique=True)
    op.create_index(
        "ix_invitations_tenant_id_user_id", "invitations", ["tenant_id", "user_id"], unique=False
    )
    enable_tenant_rls("invitations")
    op.execute(INVITATION_LOOKUP_FN)

    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("for_tenant_id", sa.UUID(), nullable=True),
        sa.Column("to_address", sa.String(length=320), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "next_attempt_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("last_error", sa.String(length=500), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "status in ('pending','sent','logged','failed')",
            name=op.f("ck_mail_outbox_status_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["for_tenant_id"],
            ["tenants.id"],
            name=op.f("fk_mail_outbox_for_tenant_id_tenants"),
            ondelete="cascade",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mail_outbox")),
    )
    op.create_index(
        "ix_mail_outbox_next_attempt_at",
        "mail_outbox",
        ["next_attempt_at"],
        unique=False,
        postgresql_where=sa.text("status = 'pending'"),
    )
    op.create_index("ix_mail_outbox_for_tenant_id", "mail_outbox", ["for_tenant_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_mail_outbox_for_tenant_id", table_name="mail_outbox")
    op.drop_index("ix_mail_outbox_next_attempt_at", table_name="mail_outbox")
    op.drop_table("mail_outbox")
    op.execute("drop function if exists iiot_invitation_by_token(bytea)")
    disable_tenant_rls("invitations")
    op.drop_index("ix_invitations_tenant_id_user_id", table_name="invitations")
    op.drop_index("ix_invitations_token_hash", table_name="invitations")
    op.drop_table("invitations")
