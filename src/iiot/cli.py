"""The `iiot` command line."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console

from iiot import __version__, heap

app = typer.Typer(
    help="iiot: multi-tenant Industrial IoT platform.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Database commands.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console(stderr=True)

if TYPE_CHECKING:
    from fastapi import FastAPI

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
    mqtt_port: Annotated[
        int | None,
        typer.Option(help="MQTT port (IIOT_MQTT_PORT, default 1883; 0 disables MQTT)."),
    ] = None,
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
    # The configuration is checked before the application is imported (seconds of CPU): a
    # refusal is immediate.
    settings = _settings()

    import uvicorn

    from iiot.connectivity.redact import uvicorn_log_config
    from iiot.http.server import protocol_with_header_timeout
    from iiot.quotas.ratelimit import SharedStateRequired, require_shared_state

    if host is not None:
        settings = settings.model_copy(update={"host": host})
    if mqtt_port is not None:
        settings = settings.model_copy(update={"mqtt_port": mqtt_port})
    count = settings.worker_count(workers)
    try:
        require_shared_state(settings.redis_url, count)
    except SharedStateRequired as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    options = {
        "host": host or settings.host,
        "port": port or settings.port,
        "log_level": "info",
        "access_log": settings.access_log if access_log is None else access_log,
        # X-Forwarded-For is read by iiot itself, from IIOT_TRUSTED_PROXIES only.
        "proxy_headers": False,
        # Device tokens in paths (the HTTP device API) never reach a log line.
        "log_config": uvicorn_log_config(),
        # Slow clients: headers must arrive in time; idle keep-alive connections are closed.
        "http": protocol_with_header_timeout(settings.header_read_timeout_seconds),
        "timeout_keep_alive": settings.keep_alive_timeout_seconds,
        "h11_max_incomplete_event_size": 16 * 1024,  # request line and headers
    }
    if count > 1:
        with console.status("Preparing the database…"):
            _prepare_once(settings)
        heap.settle_after_startup()
        # Each worker imports the app itself; the database is migrated by now. Options travel
        # to the workers by name: the header deadline is the protocol class's default there.
        options["http"] = "iiot.http.server:HeaderTimeoutProtocol"
        uvicorn.run("iiot.cli:worker_app", factory=True, workers=count, **options)  # type: ignore[arg-type]
        return
    # Only the single-process server builds the application here: with several workers, each
    # imports it itself and this process only supervises them.
    from iiot.app import create_app

    with console.status("Preparing the database and starting iiot…"):
        application = create_app(settings)
    uvicorn.run(application, **options)  # type: ignore[arg-type]


def worker_app() -> FastAPI:
    """The application of one of several server processes (uvicorn's factory, in each). Like
    `serve`, it holds the garbage collector off until the application has started."""
    heap.hold_during_startup()
    from iiot.app import create_app

    return create_app()


def _prepare_once(settings: Settings) -> None:
    """Migrate and create the bootstrap admin before several workers start at once."""
    from iiot.bootstrap import ensure_bootstrap_admin, prepare_database
    from iiot.runtime import Runtime

    urls = prepare_database(settings)
    settings.resolved_jwt_secret()

    async def _run() -> None:
        rt = Runtime.build(settings, urls.require_app_url())
        try:
            await ensure_bootstrap_admin(rt)
        finally:
            await rt.db.dispose()

    asyncio.run(_run())


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database to the latest revision (as the owner role)."""
    settings = _settings()
    # An external database (IIOT_DATABASE_URL) is migrated as its owner only: said before the
    # migration machinery is loaded.
    if settings.database_url is not None and settings.database_owner_url is None:
        _no_owner_url()
    from iiot.bootstrap import prepare_database

    with console.status("Migrating the database…"):
        urls = prepare_database(settings, run_migrations=True)
    if urls.owner_url is None:
        _no_owner_url()
    console.print("[green]Database is at the latest revision.[/]")


def _no_owner_url() -> NoReturn:
    console.print("[red]Set IIOT_DATABASE_OWNER_URL to migrate an external database.[/]")
    raise typer.Exit(2)


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="E-mail of the system admin.")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    full_name: Annotated[str | None, typer.Option(help="Display name.")] = None,
) -> None:
    """Create (or promote) a system admin."""
    # Imported as they are needed: a refused password or an unreachable database is answered
    # without loading the rest of the application.
    from iiot.errors import IIoTError
    from iiot.identity.passwords import check_password_rules

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
    from iiot.bootstrap import prepare_database

    with console.status("Preparing the database…"):
        urls = prepare_database(settings)
    from iiot.runtime import Runtime
    from iiot.users.admin import create_system_admin

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


def _one_line(exc: BaseException) -> str:
    from iiot.errors import IIoTError

    if isinstance(exc, IIoTError):
        return exc.detail
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:500]


def main() -> None:
    """Entry point: any failure is one clear line on standard error and a non-zero exit."""
    # No garbage collections while the command starts (iiot.heap): `serve` brings the collector
    # back once the application has started (with several workers, once the database is
    # prepared); the one-shot commands (`db upgrade`, `create-admin`) exit when done.
    heap.hold_during_startup()
    try:
        app()
    except KeyboardInterrupt:
        console.print("[red]Interrupted.[/]")
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence of the command line
        console.print(
            f"iiot: {_one_line(exc)}", style="red", markup=False, highlight=False, soft_wrap=True
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
