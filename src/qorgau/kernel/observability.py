"""Structured logs without personal data, Prometheus metrics, request ids."""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

import structlog

# Keys whose values must never reach a log line, whatever a caller passes.
_FORBIDDEN_KEYS = frozenset(
    {
        "iin",
        "phone",
        "name",
        "display_name",
        "body",
        "text",
        "description",
        "password",
        "client",
        "ip",
        "token",
    }
)


def _scrub(_logger: Any, _method: str, event: dict[str, Any]) -> dict[str, Any]:
    for key in list(event):
        if key in _FORBIDDEN_KEYS:
            event[key] = "[redacted]"
    return event


class _Stderr:
    """Looks up sys.stderr on every write, so redirected stderr (tests, daemons) gets the lines."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


# How request lines are written (set by configure_logging): JSON request lines skip structlog's
# processor chain, the largest per-request cost after the framework itself on busy Matrix routes.
_request_lines = {"enabled": True, "json": True}


def configure_logging(level: str = "info", json_logs: bool = True) -> None:
    """JSON lines on stderr (or console when not JSON), with personal-data keys redacted."""
    _request_lines["enabled"] = getattr(logging, level.upper()) <= logging.INFO
    _request_lines["json"] = json_logs
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=getattr(logging, level.upper()))
    renderer: Any = structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _scrub,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=_Stderr()),  # type: ignore[arg-type]
        cache_logger_on_first_use=False,
    )


log = structlog.get_logger("qorgau")

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """A tiny Prometheus registry: per-route request counts and latency histograms."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.hist: dict[tuple[str, str], list[int]] = {}
        self.hist_sum: dict[tuple[str, str], float] = defaultdict(float)
        self.gauges: dict[str, Any] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            buckets = self.hist.setdefault((method, route), [0] * (len(BUCKETS) + 1))
            for i, bound in enumerate(BUCKETS):
                if seconds <= bound:
                    buckets[i] += 1
            buckets[-1] += 1
            self.hist_sum[(method, route)] += seconds

    def render(self, extra_gauges: dict[str, float]) -> str:
        def esc(v: str) -> str:
            return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

        lines = [
            "# HELP qorgau_http_requests_total HTTP requests by method, route and status.",
            "# TYPE qorgau_http_requests_total counter",
        ]
        with self._lock:
            for (method, route, status), n in sorted(self.requests.items()):
                lines.append(
                    f'qorgau_http_requests_total{{method="{method}",route="{esc(route)}",status="{status}"}} {n}'
                )
            lines += [
                "# HELP qorgau_http_request_duration_seconds HTTP request latency by route.",
                "# TYPE qorgau_http_request_duration_seconds histogram",
            ]
            for (method, route), buckets in sorted(self.hist.items()):
                labels = f'method="{method}",route="{esc(route)}"'
                for bound, n in zip(BUCKETS, buckets, strict=False):
                    lines.append(f'qorgau_http_request_duration_seconds_bucket{{{labels},le="{bound}"}} {n}')
                lines.append(f'qorgau_http_request_duration_seconds_bucket{{{labels},le="+Inf"}} {buckets[-1]}')
                lines.append(f"qorgau_http_request_duration_seconds_sum{{{labels}}} {self.hist_sum[(method, route)]}")
                lines.append(f"qorgau_http_request_duration_seconds_count{{{labels}}} {buckets[-1]}")
        for name, value in sorted(extra_gauges.items()):
            lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name} {value}")
        return "\n".join(lines) + "\n"


# Request ids only correlate the lines of one request: a random per-process prefix and a counter are
# unique without a system call per request.
_request_prefix = os.urandom(4).hex()
_request_counter = itertools.count(1)


def new_request_id() -> str:
    return f"{_request_prefix}{next(_request_counter) & 0xFFFFFFFF:08x}"


def _json_str(value: str) -> str:
    if value.isascii() and value.isprintable() and '"' not in value and "\\" not in value:
        return f'"{value}"'
    return json.dumps(value)


def log_request(request_id: str, method: str, route: str, status: int, elapsed: float) -> None:
    """The one log line of a request: its route template, never the raw path (paths can carry identifiers)."""
    if not _request_lines["enabled"]:
        return
    ms = round(elapsed * 1000, 2)
    if not _request_lines["json"]:
        log.info("request", request_id=request_id, method=method, route=route, status=status, ms=ms)
        return
    # The same keys and format as structlog's JSON lines, without its processor chain.
    stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    sys.stderr.write(
        f'{{"request_id": "{request_id}", "method": {_json_str(method)}, "route": {_json_str(route)}, '
        f'"status": {int(status)}, "ms": {ms!r}, "event": "request", "level": "info", "timestamp": "{stamp}"}}\n'
    )


def metrics_middleware(metrics: Metrics) -> Any:
    """ASGI middleware: a request id for each request, its latency per route template, one log line."""

    def factory(app: Any) -> Any:
        async def middleware(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            request_id = new_request_id()
            scope["qorgau_request_id"] = request_id
            status_holder = {"status": 500}
            started = time.perf_counter()

            async def send_wrapper(message: Any) -> None:
                if message["type"] == "http.response.start":
                    status_holder["status"] = message["status"]
                    headers = list(message.get("headers", []))
                    headers.append((b"x-request-id", request_id.encode()))
                    message = {**message, "headers": headers}
                await send(message)

            try:
                await app(scope, receive, send_wrapper)
            finally:
                elapsed = time.perf_counter() - started
                handler = scope.get("route_handler")
                route = scope.get("path_template") or (
                    next(iter(handler.paths))
                    if handler is not None and getattr(handler, "paths", None)
                    else "unmatched"
                )
                metrics.observe(scope["method"], route, status_holder["status"], elapsed)
                log_request(request_id, scope["method"], route, status_holder["status"], elapsed)

        return middleware

    return factory
