"""The garbage collector's settings for a long-running server process.

A started server holds a few hundred thousand long-lived objects (routes, their models and
validators, the ORM's mappings, caches). With CPython's default thresholds every request
allocates enough to trigger a young collection every few requests and a full one every few
hundred, and a full collection walks all of them: measured on the single-point ingest
benchmark, collections took over half of the server's CPU, full ones about 0.4 s each (which
also shows as latency: every request in flight waits for them). Profilers attribute that time
to whichever function happened to allocate, typically the first line of a coroutine (e.g.
`RequestBodyGuard.__call__`).

After start-up, the objects that exist are moved out of the collector's view
(`gc.freeze()`: they are never freed anyway), and the youngest generation is collected less
often, so a collection walks only what requests left behind.

While a server starts (importing the application, building its routes and models, preparing
the database), nearly everything it allocates lives as long as the process, and the heap only
grows: each collection then walks more objects and finds next to nothing to free. The `iiot`
command holds the collector off from its start: `serve` until start-up is done (measured:
about a quarter of a start-up's CPU, 0.7 s of 2.8 s), the one-shot commands (`db upgrade`,
`create-admin`) to their end (a fifth of their CPU).

The freeze is not preceded by a full collection: what start-up leaves as garbage (about a
thousand objects: temporary classes and functions, the logging configuration uvicorn replaces;
no sockets or connections) stays, frozen, instead of a walk of all 200,000 objects (0.2 s of
CPU, most of what freezing cost).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
MIDDLE_THRESHOLD = 50
OLD_THRESHOLD = 100


def hold_during_startup() -> None:
    """No collections until `settle_after_startup` (a process, before it imports the
    application)."""
    gc.disable()


def settle_after_startup() -> None:
    """Freeze what start-up built, collect the young generation less often, and turn the
    collector back on if start-up held it off."""
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, MIDDLE_THRESHOLD, OLD_THRESHOLD)
    gc.enable()
