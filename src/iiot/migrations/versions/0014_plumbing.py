"""plumbing: a notice when someone's access to a tenant ends

Revision ID: 0014
Revises: 0013

Live streams are authorised when they open and would otherwise run until the access token
expires. Two triggers announce on the channel `iiot_memberships`, in the transaction that
makes the change (so only once it commits), that a person's access ended:

- a membership deleted (a member removed, an invitation withdrawn, a user or tenant purged):
  `{"t": tenant id, "u": user id}`;
- an account leaving `active` (disabled): `{"u": user id}` (every tenant).

Every process's live-stream hub ends the matching streams; a reconnect is authorised afresh.
The functions run as the caller (NOTIFY needs no privilege) and read only the changed row.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UPGRADE = """
create function iiot_membership_ended()
returns trigger
language plpgsql
set search_path = public, pg_temp
as $$
begin
    perform pg_notify(
        'iiot_memberships', json_build_object('t', old.tenant_id, 'u', old.user_id)::text
    );
    return null;
end
$$;
create trigger memberships_ended
    after delete on memberships
    for each row execute function iiot_membership_ended();

create function iiot_account_disabled()
returns trigger
language plpgsql
set search_path = public, pg_temp
as $$
begin
    perform pg_notify('iiot_memberships', json_build_object('u', new.id)::text);
    return null;
end
$$;
create trigger users_disabled
    after update of status on users
    for each row
    when (old.status = 'active' and new.status <> 'active')
    execute function iiot_account_disabled();
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute("drop trigger if exists users_disabled on users")
    op.execute("drop function if exists iiot_account_disabled()")
    op.execute("drop trigger if exists memberships_ended on memberships")
    op.execute("drop function if exists iiot_membership_ended()")
