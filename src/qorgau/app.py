"""Assembles the ASGI app from the kernel's and the services' routers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from litestar import Litestar, Request, Response
from litestar.datastructures import State
from litestar.static_files import create_static_files_router

from qorgau.kernel.auth.throttle import ClientThrottle
from qorgau.kernel.context import Kernel, build_kernel
from qorgau.kernel.events import set_bus
from qorgau.kernel.observability import Metrics, configure_logging, log, metrics_middleware
from qorgau.kernel.realtime import Hub, make_bus
from qorgau.settings import Settings
from qorgau.web import invites, kernel_api, pages, transparency
from qorgau.web.http import check_csrf
from qorgau.web.problems import problem_response

STATIC_DIR = Path(__file__).parent / "web" / "static"


def _route_handlers() -> list[Any]:
    from qorgau.kernel.ledger import api as ledger_api
    from qorgau.messenger import matrix, office_web, onboarding_web
    from qorgau.messenger import web as messenger_web
    from qorgau.reports import open311
    from qorgau.reports import web as reports_web

    return [
        *pages.ROUTES,
        *invites.ROUTES,
        *kernel_api.ROUTES,
        *transparency.ROUTES,
        *ledger_api.ROUTES,
        *reports_web.ROUTES,
        open311.router(),
        *messenger_web.ROUTES,
        *office_web.ROUTES,
        *onboarding_web.ROUTES,
        matrix.router(),
        create_static_files_router(path="/static", directories=[STATIC_DIR], send_as_attachment=False),
    ]


def _exception_response(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    from qorgau.messenger import matrix

    # Unknown /_matrix paths and methods never reach the Matrix router: answer them in Matrix's shape too.
    if matrix.is_matrix_path(request.url.path):
        return matrix.matrix_error_response(request, exc)
    return problem_response(request, exc)


async def _before_request(request: Request[Any, Any, Any]) -> None:
    await check_csrf(request)


class QorgauApp(Litestar):
    """The platform's ASGI app: the Matrix hot paths go through the messenger's fast lane first."""

    fast_lane: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.fast_lane is not None and await self.fast_lane.handle(scope, receive, send):
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, *, kernel: Kernel | None = None) -> Litestar:
    """Build the app; pass a kernel to share one (tests), or settings to build one at start-up."""
    if kernel is None:
        if settings is None:
            raise ValueError("create_app needs settings or a kernel")
        kernel = build_kernel(settings)
    configure_logging(kernel.settings.log_level, kernel.settings.log_json)
    metrics = Metrics()
    hub = Hub()
    bus = make_bus(kernel.settings.bus)
    kernel.bus = bus

    @contextlib.asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        hub.start()
        await bus.start(hub, kernel.db)
        set_bus(bus)
        kernel.writer.start()
        # A deployment always publishes a head before serving: the empty log's, on a fresh database.
        await asyncio.to_thread(kernel.ledger.sign_if_grown)
        signer = asyncio.create_task(kernel.ledger.run_signer(), name="ledger-signer")
        from qorgau.reports.services.retention import run_purger

        # The reports' retention rule, applied hourly (also `qorgau reports purge`).
        purger = asyncio.create_task(run_purger(kernel), name="reports-purger")
        from qorgau.messenger.services.compliance import run_purger as run_messenger_purger

        # The messenger's retention periods, applied hourly (also `qorgau messenger purge`).
        messenger_purger = asyncio.create_task(run_messenger_purger(kernel), name="messenger-purger")
        log.info("started", database=kernel.db.dialect, bus=kernel.settings.bus.split("://")[0])
        try:
            yield
        finally:
            signer.cancel()
            purger.cancel()
            messenger_purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await signer
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            with contextlib.suppress(asyncio.CancelledError):
                await messenger_purger
            from qorgau.messenger import matrix

            await matrix.shutdown(kernel)
            await bus.stop()

    app = QorgauApp(
        route_handlers=_route_handlers(),
        state=State(
            {
                "kernel": kernel,
                "metrics": metrics,
                "hub": hub,
                "bus": bus,
                "client_throttle": ClientThrottle(
                    kernel.settings.login_max_failures,
                    kernel.settings.login_lockout_seconds,
                    kernel.settings.login_lockout_max_seconds,
                ),
            }
        ),
        exception_handlers={Exception: _exception_response},
        before_request=_before_request,
        middleware=[metrics_middleware(metrics)],
        lifespan=[lifespan],
        debug=False,
        openapi_config=None,
        request_max_body_size=10 * 1024 * 1024,
    )
    from qorgau.messenger.fastlane import MatrixFastLane

    app.fast_lane = MatrixFastLane(app.state, metrics)
    return app


def app_from_env() -> Litestar:
    """Entry for `uvicorn --factory qorgau.app:app_from_env` (each worker builds its own kernel)."""
    from qorgau.settings import load_settings

    return create_app(load_settings())
