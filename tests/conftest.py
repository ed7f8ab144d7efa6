"""Shared fixtures: one migrated database per session, emptied after every test.

The application is imported by the fixtures, not here: the process that only hands tests out
to the pytest-xdist workers loads this file too, and has no use for it.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from iiot.config import Settings
    from iiot.runtime import Runtime
    from tests.fixtures.database import Cleaner, Template, TestDatabase
    from tests.fixtures.factories import Factory, World

# Platform seed rows that survive between tests (tiers are restored to their seed instead).
KEEP_TABLES = frozenset({"alembic_version"})

# Modules with tests that run for seconds (servers in subprocesses, a browser, fuzzing), longest
# first. They start first, so that the parallel workers share them out and finish together
# on the short tests instead of one worker running a long test alone at the end.
LONG_RUNNING_FIRST = (
    "tests/test_schemathesis.py",
    "tests/web/test_ui_e2e.py",
    "tests/scaleout/test_two_processes.py",
    "tests/mqtt/test_protocol.py",
    "tests/test_serve_workers.py",
    "tests/test_cli.py",
    "tests/db/test_outage.py",
    "tests/connectivity/test_cross_process.py",
    "tests/rules/test_durable.py",
    "tests/stream/test_stream.py",
    "tests/test_cli_failures.py",
    "tests/telemetry/test_issue13_bounds.py",
    "tests/mqtt/test_serve_crash.py",
    "tests/mqtt/test_tb_iot_gateway.py",
    "tests/telemetry/test_storage_migration.py",
)


def pytest_configure(config: pytest.Config) -> None:
    """No garbage collections while a process that runs tests collects them (see
    `pytest_collection_finish`); the pytest-xdist controller runs none."""
    if hasattr(config, "workerinput") or not config.getoption("numprocesses", None):
        gc.disable()


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """What collection imported (the application, the test modules) lives as long as the
    process: it is moved out of the collector's view (`gc.freeze()`, as the server does after
    start-up, iiot.heap), so that collections during the tests walk only what tests allocate.
    Collecting with all of it in view took about a sixth of a test process's CPU. (What
    collection left as garbage is frozen too: a test process is short-lived, and one full
    collection to free it first walks everything, 0.2 s of CPU.)"""
    gc.freeze()
    gc.enable()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules of LONG_RUNNING_FIRST first, in that order; each module's tests stay
    together and in their order (module-scoped fixtures are set up once)."""
    rank = {path: n for n, path in enumerate(LONG_RUNNING_FIRST)}
    last = len(rank)
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], last))


# The controller's template database: the template, the thread preparing it, its failure.
_TEMPLATE: pytest.StashKey[tuple[Template, threading.Thread, list[BaseException]]] = (
    pytest.StashKey()
)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """(pytest-xdist controller, per worker) The workers copy their databases from one
    template, migrated here once while they start, instead of each migrating its own."""
    from tests.fixtures.database import Template, external_server

    server = external_server()
    if server is None:
        return
    config: pytest.Config = node.config
    if _TEMPLATE not in config.stash:
        template, errors = Template.new(), []

        def prepare() -> None:
            try:
                template.prepare(server)
            except BaseException as exc:
                errors.append(exc)
                raise

        thread = threading.Thread(target=prepare, name="test database template", daemon=True)
        thread.start()
        config.stash[_TEMPLATE] = (template, thread, errors)
    node.workerinput["iiot_template"] = config.stash[_TEMPLATE][0].as_dict()


def pytest_unconfigure(config: pytest.Config) -> None:
    made = config.stash.get(_TEMPLATE, None)
    if made is None:
        return
    from tests.fixtures.database import external_server

    template, thread, errors = made
    thread.join()
    server = external_server()
    if server is not None:
        template.drop(server)
    if errors:
        raise errors[0]


@pytest.fixture(scope="session")
def db_urls(pytestconfig: pytest.Config) -> Iterator[TestDatabase]:
    from tests.fixtures.database import Template, test_database

    spec = getattr(pytestconfig, "workerinput", {}).get("iiot_template")
    with test_database(Template(**spec) if spec else None) as db:
        yield db


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    from iiot.config import Settings

    data_dir: Path = tmp_path_factory.mktemp("iiot-data")
    return Settings(
        env="development",
        data_dir=data_dir,
        jwt_secret="test-secret-" + "x" * 40,
        run_background_jobs=False,
        public_url="http://iiot.test",
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture(scope="session")
async def runtime(db_urls: TestDatabase, settings: Settings) -> AsyncIterator[Runtime]:
    from iiot.app import MODULES
    from iiot.runtime import Runtime

    rt = Runtime.build(settings, db_urls.app_url, MODULES)
    yield rt
    await rt.db.dispose()


@pytest.fixture(scope="session")
async def owner_engine(db_urls: TestDatabase) -> AsyncIterator[AsyncEngine]:
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(db_urls.admin_url)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def app(runtime: Runtime):  # type: ignore[no-untyped-def]
    from iiot.app import create_app

    built = create_app(runtime=runtime)
    gc.freeze()  # the session's application and runtime, like what collection imported
    return built


@pytest.fixture(scope="session")
async def database_cleaner(db_urls: TestDatabase) -> AsyncIterator[Cleaner]:
    from tests.fixtures.database import Cleaner

    cleaner = Cleaner(db_urls.admin_url, keep=KEEP_TABLES)
    yield cleaner
    await cleaner.close()


@pytest.fixture(autouse=True)
def _password_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cheap argon2id parameters, unless the test is about the cost of the hash."""
    from iiot.identity import passwords
    from tests.fixtures import passwords as test_passwords

    if request.node.get_closest_marker("real_password_hashing") is None:
        monkeypatch.setattr(passwords, "_hasher", test_passwords.CHEAP)
        monkeypatch.setattr(passwords, "_DUMMY_HASH", test_passwords.CHEAP_DUMMY_HASH)


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> None:
    """Every test that reaches the database leaves it as migrated. Every database fixture
    depends on `db_urls`; a test whose fixtures do not include it never touched the database,
    so it gets no cleanup at all. (Requested dynamically from a plain fixture so the async
    cleanup runs in the test's event loop, after the test's own fixtures are torn down.)"""
    if "db_urls" in request.fixturenames:
        request.getfixturevalue("_database_cleanup")


@pytest.fixture
async def _database_cleanup(
    request: pytest.FixtureRequest, database_cleaner: Cleaner
) -> AsyncIterator[None]:
    """Removes the rows the test wrote (or puts back the rows the module keeps), restores the
    tiers and the rate counters."""
    from iiot.db.listen import Listener
    from iiot.metering.meter import usage_meter
    from iiot.quotas.ratelimit import make_rate_limiter

    yield
    runtime: Runtime | None = None
    if "runtime" in request.fixturenames:
        runtime = request.getfixturevalue("runtime")
        runtime.rate = make_rate_limiter(None)
        usage_meter(runtime).discard()
    await database_cleaner.clean()
    if database_cleaner.keeping and runtime is not None:
        # Kept rows come back behind the listeners' backs (no notifications): the caches fed
        # by them forget what they hold, as after a lost listening connection.
        found = runtime.state.peek(Listener)
        if found is not None:
            found._reset_all()


@pytest.fixture
async def factory(runtime: Runtime, app) -> AsyncIterator[Factory]:  # type: ignore[no-untyped-def]
    from tests.fixtures.factories import Factory

    f = Factory(rt=runtime, app=app)
    yield f
    await f.aclose()


@pytest.fixture
async def world(factory: Factory) -> World:
    from tests.fixtures.factories import build_world

    return await build_world(factory)


@pytest.fixture
async def anon(factory: Factory):  # type: ignore[no-untyped-def]
    return factory.client()
