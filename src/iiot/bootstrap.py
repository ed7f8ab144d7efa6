"""Start-up: find or start the database, migrate it, make sure a system admin exists."""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass

from psycopg.conninfo import conninfo_to_dict
from rich.console import Console

from iiot.config import Settings
from iiot.db import migrate, setup
from iiot.db.embedded import start_embedded

log = logging.getLogger(__name__)

APP_ROLE = "iiot_app"
EMBEDDED_DATABASE = "iiot"


@dataclass(frozen=True)
class DatabaseUrls:
    app_url: str | None
    owner_url: str | None

    def require_app_url(self) -> str:
        if self.app_url is None:
            raise RuntimeError("IIOT_DATABASE_URL (the application role's URL) must be set")
        return self.app_url


def prepare_database(settings: Settings, *, run_migrations: bool = True) -> DatabaseUrls:
    """Resolve the database URLs; on the embedded default also create the database and roles.

    An external database is used when either URL is set. Migrations need the owner URL; the
    grants go to the role of `IIOT_DATABASE_URL`, or to `iiot_app` when only the owner URL is
    given (as in the README's set-up SQL).
    """
    if settings.database_url is None and settings.database_owner_url is None:
        server = start_embedded(settings.data_dir)
        admin = server.url("postgres", "postgres")
        owner = server.url("postgres", EMBEDDED_DATABASE)
        setup.ensure_database(admin, EMBEDDED_DATABASE)
        setup.ensure_app_role(owner, APP_ROLE)
        urls = DatabaseUrls(server.url(APP_ROLE, EMBEDDED_DATABASE), owner)
    else:
        urls = DatabaseUrls(
            setup.sqlalchemy_url(settings.database_url) if settings.database_url else None,
            setup.sqlalchemy_url(settings.database_owner_url)
            if settings.database_owner_url
            else None,
        )
    if run_migrations and urls.owner_url:
        migrate.upgrade(urls.owner_url, app_role_of(urls.app_url))
    return urls


def app_role_of(app_url: str | None) -> str:
    """The role the application connects as (read as the driver reads the URL)."""
    if app_url is None:
        return APP_ROLE
    user = conninfo_to_dict(setup.plain_url(app_url)).get("user")
    return str(user) if user else APP_ROLE


async def ensure_bootstrap_admin(rt: object, console: Console | None = None) -> None:
    """Create the first system admin and the operator's own tenant, once."""
    from iiot.runtime import Runtime
    from iiot.users import lookup as accounts
    from iiot.users.admin import create_system_admin

    assert isinstance(rt, Runtime)
    settings = rt.settings
    async with rt.db.system() as session:
        if settings.bootstrap_admin_email:
            if await accounts.account_by_email(session, settings.bootstrap_admin_email):
                return
        elif await accounts.any_system_admin(session):
            return
    email = settings.bootstrap_admin_email or "admin@iiot.local"
    password = settings.bootstrap_admin_password
    generated = password is None
    if password is None:
        password = secrets.token_urlsafe(18)
    tenant_id: uuid.UUID = await create_system_admin(
        rt,
        email=email,
        password=password,
        full_name="Platform administrator",
        tenant_name=settings.bootstrap_tenant_name,
        tenant_slug=settings.bootstrap_tenant_slug,
    )
    log.info("bootstrap admin %s created with tenant %s", email, tenant_id)
    if generated:
        (console or Console(stderr=True)).print(
            "[bold yellow]First start: a system admin was created.[/]\n"
            f"  e-mail:   {email}\n  password: {password}\n"
            "This password is shown only once; change it after signing in."
        )
