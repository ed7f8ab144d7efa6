"""The `iiot` command line."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from iiot import __version__

app = typer.Typer(help="iiot: multi-tenant Industrial IoT platform.", no_args_is_help=True)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console(stderr=True)

if TYPE_CHECKING:
    from iiot.config import Settings


def _settings() -> Settings:
    """The settings, or a readable refusal (exit code 2) when they are invalid."""
    from pydantic import ValidationError

    from iiot.config import get_settings

    try:
        return get_settings()
    except ValidationError as exc:
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            console.print(
                f"[red]Invalid configuration{' (' + where + ')' if where else ''}: {message}[/]"
            )
        raise typer.Exit(2) from None


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (IIOT_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (IIOT_PORT).")] = None,
    access_log: Annotated[
        bool | None,
        typer.Option(
            "--access-log/--no-access-log",
            help="Log every request (IIOT_ACCESS_LOG); costly on the ingest hot path.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=256,
            help="Server processes (IIOT_WORKERS); default one per core in production, "
            "one in development.",
        ),
    ] = None,
) -> None:
    """Start the HTTP API and web UI (migrates the database first).

    With several workers the database is prepared (migrations, first admin) once here, then
    uvicorn starts the processes; each builds its own runtime. Processes share nothing but
    the database: per-process caches are invalidated by NOTIFY or re-checked in the write's
    transaction, and each background job runs in one process at a time (advisory locks).
    """
    import uvicorn

    settings = _settings()
    count = settings.worker_count(workers)
    run = {
        "host": host or settings.host,
        "port": port or settings.port,
        "log_level": "info",
        "access_log": settings.access_log if access_log is None else access_log,
        "proxy_headers": False,
    }
    if count == 1:
        from iiot.app import create_app

        with console.status("Preparing the database and starting iiot…"):
            application = create_app(settings)
        uvicorn.run(application, **run)  # type: ignore[arg-type]
        return
    with console.status("Preparing the database…"):
        _prepare_for_workers(settings)
    uvicorn.run("iiot.app:create_app", factory=True, workers=count, **run)  # type: ignore[arg-type]


def _prepare_for_workers(settings: Settings) -> None:
    """What every process would otherwise race to do at its start: migrate, create the
    development secret and the first admin."""
    from iiot.app import MODULES
    from iiot.bootstrap import ensure_bootstrap_admin, prepare_database
    from iiot.runtime import Runtime

    urls = prepare_database(settings)
    settings.resolved_jwt_secret()

    async def _admin() -> None:
        rt = Runtime.build(settings, urls.require_app_url(), MODULES)
        try:
            await ensure_bootstrap_admin(rt)
        finally:
            await rt.db.dispose()

    asyncio.run(_admin())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the latest revision (as the owner role)."""
    from iiot.bootstrap import prepare_database

    settings = _settings()
    with console.status("Migrating the database…"):
        urls = prepare_database(settings, run_migrations=True)
    if urls.owner_url is None:
        console.print("[red]Set IIOT_DATABASE_OWNER_URL to migrate an external database.[/]")
        raise typer.Exit(2)
    console.print("[green]Database is at the latest revision.[/]")


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="E-mail of the system admin.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    full_name: Annotated[str | None, typer.Option(help="Display name.")] = None,
) -> None:
    """Create (or promote) a system admin."""
    from iiot.auth.passwords import check_password_rules
    from iiot.bootstrap import prepare_database
    from iiot.errors import IIoTError
    from iiot.runtime import Runtime
    from iiot.users.admin import create_system_admin

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        check_password_rules(password, email)
    except IIoTError as exc:
        console.print(f"[red]{exc.detail}[/]")
        raise typer.Exit(2) from exc
    settings = _settings()
    with console.status("Preparing the database…"):
        urls = prepare_database(settings)

    async def _run() -> None:
        rt = Runtime.build(settings, urls.require_app_url())
        try:
            await create_system_admin(
                rt,
                email=email,
                password=password,
                full_name=full_name,
                tenant_name=settings.bootstrap_tenant_name,
                tenant_slug=settings.bootstrap_tenant_slug,
            )
        finally:
            await rt.db.dispose()

    asyncio.run(_run())
    console.print(f"[green]System admin {email} is ready.[/]")


if __name__ == "__main__":
    app()
