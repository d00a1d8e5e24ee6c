"""Citizen reports benchmark: anonymous submissions over HTTP, and the public statistics at 10^6 reports.

Run from the repository root::

    .venv/bin/python bench/reports.py                                   # SQLite only
    .venv/bin/python bench/reports.py --postgres postgresql://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/reports.py --concurrency 1,4 --seconds 10 --stats-reports 1000000

What it does, for SQLite (a fresh data dir) and, with ``--postgres URL``, for a fresh PostgreSQL database
created on that server for the run (``qorgau_bench_<hex>``, dropped at the end):

1. Starts the real server as a subprocess: ``qorgau serve --data-dir TMP --port FREE --demo
   [--database-url DB]``. One variable is passed on, and printed: the per-client submission limit
   (``QORGAU_REPORTS_SUBMISSIONS_PER_HOUR``, 10 by default) is raised, since every submission comes
   from the same loopback address here.
2. Seeds what the service would hold after 10^6 reports (``--stats-reports``), straight into the
   database while the server idles: the ``report_stats`` aggregate (what the public page reads; 20
   regions x 8 categories x 24 months, the current month last) **and** 10^6 bare metadata rows in
   ``reports`` (category, region, unit, status, times; empty content blobs, no history, messages or
   ledger entries; those closed more than a year ago are marked purged, as the retention rule would
   have left them). The output says so.
3. Measures ``GET /reports/statistics?by=region|category|month`` (the HTML page with its SVG chart)
   and ``GET /api/v1/reports/statistics?by=region`` (JSON) one request at a time on a keep-alive
   connection: ``--stats-requests`` each after a warm-up; p50/p99. The goal is < 100 ms.
4. Measures anonymous submissions per second with closed-loop clients (one thread and one keep-alive
   connection each), as a browser does it: ``GET /reports/new`` once per client (the pre-session CSRF
   cookie and token), then for each report ``POST /reports/check`` (url-encoded) and ``POST
   /reports/send`` (multipart, with ``_csrf``), the latter with no file or with one ~1 MB JPEG carrying
   EXIF with GPS tags (``--photo-kb``). Also ``POST /open311/v2/requests.json`` (url-encoded, no
   cookie: an anonymous city app). Every reply is checked (a receipt on the page, a token in the JSON).
   The rate counts completed submissions; the latency is that of the request that files the report
   (sniff, metadata scrub, encryption, commit). After the photo runs, an officer downloads one stored
   photo and the script checks that it has no EXIF/GPS left.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds http.py, which must not shadow the standard library's http package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import re  # noqa: E402
import secrets  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

HOST = "127.0.0.1"
CSRF_RE = re.compile(r'name="_csrf" value="([0-9a-f]{64})"')
SUBMISSION_LIMIT = 100_000_000
DESCRIPTION = (
    "Two men were fighting next to the bus stop on Abai avenue at about nine in the evening; "
    "one of them threw a bottle at a passing car. Witness: Aigul, phone 8 701 555 66 77."
)
SCENARIOS = ("form", "form+photo", "open311")


# --------------------------------------------------------------------------- the photo


def photo_with_gps(target_kb: int) -> bytes:
    """A JPEG of about `target_kb` KiB (noise, so it does not compress away) with EXIF camera and GPS tags."""
    from PIL import Image

    rng = random.Random(7)
    exif = Image.Exif()
    exif[0x010F] = "BenchCam"  # Make
    exif[0x0110] = "Model 1"  # Model
    exif[0x8825] = {1: "N", 2: (43.0, 14.0, 20.0), 3: "E", 4: (76.0, 53.0, 22.0)}  # GPS IFD
    side = 400
    best = b""
    while True:
        noise = bytes(rng.getrandbits(8) for _ in range(side * side * 3))
        img = Image.frombytes("RGB", (side, side), noise)
        out = io.BytesIO()
        img.save(out, "JPEG", quality=85, exif=exif.tobytes())
        best = out.getvalue()
        if len(best) >= target_kb * 1024 * 0.97:
            return best
        side = int(side * (target_kb * 1024 / len(best)) ** 0.5 * 1.02) + 8


def has_gps(data: bytes) -> bool:
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        exif = img.getexif()
        return bool(exif) and (0x8825 in exif or 0x010F in exif)


# --------------------------------------------------------------------------- databases and the server


@contextlib.contextmanager
def fresh_database(postgres: str | None) -> Iterator[tuple[str | None, Path, str]]:
    """Yield (database URL or None for the data dir's SQLite, data dir, label); remove it afterwards."""
    with tempfile.TemporaryDirectory(prefix="qorgau-bench-reports-") as tmp:
        data_dir = Path(tmp) / "data"
        if postgres is None:
            yield None, data_dir, f"SQLite ({data_dir / 'qorgau.db'})"
            return
        server = sa.engine.make_url(postgres)
        if server.drivername == "postgresql":
            server = server.set(drivername="postgresql+psycopg")
        name = f"qorgau_bench_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
            version = conn.exec_driver_sql("SHOW server_version").scalar()
        try:
            url = server.set(database=name).render_as_string(hide_password=False)
            yield url, data_dir, f"PostgreSQL {version} ({server.host}:{server.port or 5432}/{name})"
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            admin.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def settings_for(data_dir: Path, url: str | None) -> Any:
    from qorgau.settings import load_settings

    return load_settings(env={}, data_dir=data_dir, **({"database_url": url} if url else {}))


def officer_password(data_dir: Path, url: str | None) -> str:
    """The demo officer's password, from a kernel on the server's data dir (built before the server starts)."""
    from qorgau.demo import demo_password
    from qorgau.kernel.context import build_kernel

    kernel = build_kernel(settings_for(data_dir, url), start_writer=False)
    try:
        return demo_password(kernel, "serik.police")
    finally:
        kernel.close()


@contextlib.contextmanager
def server(data_dir: Path, url: str | None) -> Iterator[tuple[subprocess.Popen[bytes], int, list[str], dict[str, str]]]:
    port = free_port()
    exe = Path(sys.executable).parent / "qorgau"
    cmd = [str(exe), "serve", "--data-dir", str(data_dir), "--host", HOST, "--port", str(port), "--demo"]
    if url:
        cmd += ["--database-url", url]
    passed = {"QORGAU_REPORTS_SUBMISSIONS_PER_HOUR": str(SUBMISSION_LIMIT)}
    env = {k: v for k, v in os.environ.items() if not k.startswith("QORGAU_")} | passed
    log_path = data_dir.parent / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise SystemExit(
                    f"the server exited ({proc.returncode}):\n{log_path.read_text(errors='replace')[-3000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"http://{HOST}:{port}/healthz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("the server did not become ready in 180 s")
            time.sleep(0.2)
        yield proc, port, cmd, passed
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def cpu_seconds_of_group(pgid: int) -> float:
    """User + system CPU seconds of every process in process group ``pgid`` (the server)."""
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / tick


# --------------------------------------------------------------------------- seeding 10^6 reports


def _months(count: int) -> list[str]:
    now = datetime.now(UTC) + timedelta(hours=5)  # Almaty time, as the service counts months
    year, month = now.year, now.month
    out = []
    for _ in range(count):
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year - 1, 12) if month == 1 else (year, month - 1)
    return out[::-1]


def seed_plan(total: int) -> dict[tuple[str, str, str], int]:
    """How many reports each (region, category, month) got: skewed like the real service (big cities,
    rudeness and traffic first, growing over time), summing to exactly `total`."""
    from qorgau.kernel import kz
    from qorgau.reports import catalog

    regions = [r.code for r in kz.regions()]
    categories = [c.code for c in catalog.categories()]
    big = {"almaty": 12.0, "astana": 8.0, "shymkent": 4.0, "almaty_region": 4.0, "karaganda": 2.5}
    rw = {r: big.get(r, 1.0 + (i % 4) * 0.3) for i, r in enumerate(regions)}
    cat_w = {
        "rudeness_fight": 6.0,
        "traffic_violation": 7.0,
        "public_order": 4.0,
        "public_drinking": 3.0,
        "noise": 3.0,
        "vandalism": 1.5,
        "other": 1.0,
        "unlawful_data_demand": 0.05,
    }
    cw = {c: cat_w.get(c, 1.0) for c in categories}
    months = _months(24)
    mw = {m: 1.0 + k / 6 for k, m in enumerate(months)}
    weights = {(r, c, m): rw[r] * cw[c] * mw[m] for r in regions for c in categories for m in months}
    scale = total / sum(weights.values())
    plan = {key: int(w * scale) for key, w in weights.items()}
    biggest = max(plan, key=plan.__getitem__)
    plan[biggest] += total - sum(plan.values())
    return {k: v for k, v in plan.items() if v > 0}


def _month_bounds(month: str) -> tuple[int, int]:
    year, number = map(int, month.split("-"))
    start = datetime(year, number, 1, tzinfo=UTC) - timedelta(hours=5)
    end = (
        datetime(year + 1, 1, 1, tzinfo=UTC) if number == 12 else datetime(year, number + 1, 1, tzinfo=UTC)
    ) - timedelta(hours=5)
    return int(start.timestamp() * 1000), int(end.timestamp() * 1000)


def seed(data_dir: Path, url: str | None, total: int, bare_rows: bool) -> tuple[float, int]:
    """Write the aggregate (and, with `bare_rows`, one metadata row per report); returns (seconds, rows)."""
    from qorgau.kernel.auth import tables as auth_tables
    from qorgau.reports import tables as t

    started = time.perf_counter()
    engine = sa.create_engine(
        settings_for(data_dir, url).resolved_database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    )
    plan = seed_plan(total)
    now = int(time.time() * 1000)
    year_ms = 365 * 24 * 3600 * 1000
    rng = random.Random(11)
    rows = 0
    with engine.begin() as conn:
        unit_id = conn.execute(
            sa.select(auth_tables.agencies.c.id).where(auth_tables.agencies.c.code == "almaty-police")
        ).scalar_one()
        existing = {(r.region_code, r.category, r.month): r.count for r in conn.execute(sa.select(t.report_stats))}
        conn.execute(t.report_stats.delete())
        merged = dict(plan)
        for key, n in existing.items():
            merged[key] = merged.get(key, 0) + n
        conn.execute(
            t.report_stats.insert(),
            [{"region_code": r, "category": c, "month": m, "count": n} for (r, c, m), n in sorted(merged.items())],
        )
    if bare_rows:
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            with engine.begin() as conn:
                conn.execute(t.reports.insert(), batch)
            batch.clear()

        for (region, category, month), n in plan.items():
            lo, hi = _month_bounds(month)
            hi = min(hi, now - 60_000)
            for _ in range(n):
                at = rng.randrange(lo, max(lo + 1, hi))
                recent = now - at < 30 * 24 * 3600 * 1000
                status = rng.choice(["new", "triaged", "in_verification", "confirmed"]) if recent else "closed"
                closed = None if recent else at + rng.randrange(1, 20) * 24 * 3600 * 1000
                rows += 1
                batch.append(
                    {
                        "id": uuid.uuid4().hex,
                        "ref": f"B{rows:09d}",
                        "category": category,
                        "region_code": region,
                        "unit_id": unit_id,
                        "routed_by_fallback": region != "almaty",
                        "named": False,
                        "status": status,
                        "submitted_at": at,
                        "status_at": closed or at,
                        "due_at": None if closed else at + 24 * 3600 * 1000,
                        "closed_at": closed,
                        "data_key_sealed": b"",
                        "content_enc": b"",
                        "public_text_enc": b"",
                        "purged_at": closed + year_ms if closed and closed + year_ms < now else None,
                    }
                )
                if len(batch) >= 20_000:
                    flush()
        if batch:
            flush()
    engine.dispose()
    return time.perf_counter() - started, rows


# --------------------------------------------------------------------------- measuring


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


@dataclass
class Timing:
    label: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0


def measure_statistics(port: int, requests: int, warmup: int) -> tuple[list[Timing], dict[str, Any]]:
    paths = [
        ("GET /reports/statistics?by=region", "/reports/statistics?by=region"),
        ("GET /reports/statistics?by=category", "/reports/statistics?by=category"),
        ("GET /reports/statistics?by=month", "/reports/statistics?by=month"),
        ("GET /api/v1/reports/statistics?by=region", "/api/v1/reports/statistics?by=region"),
    ]
    out = []
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=60, headers={"Accept-Language": "ru"}) as client:
        sample = client.get("/api/v1/reports/statistics?by=month").json()
        for label, path in paths:
            timing = Timing(label)
            for k in range(warmup + requests):
                t0 = time.perf_counter()
                response = client.get(path)
                elapsed = (time.perf_counter() - t0) * 1000
                if response.status_code != 200 or len(response.content) < 200:
                    timing.errors += 1
                elif k >= warmup:
                    timing.latencies_ms.append(elapsed)
            out.append(timing)
    return out, sample


def _multipart(fields: dict[str, str], photo: bytes | None) -> tuple[bytes, str]:
    boundary = "----qorgaubench" + secrets.token_hex(8)
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    if photo is not None:
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="photo.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n".encode()
            + photo
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def report_fields(k: int) -> dict[str, str]:
    # Points spread over Almaty so that reports are not all duplicates of each other.
    return {
        "category": ("rudeness_fight", "traffic_violation", "noise", "public_order")[k % 4],
        "description": DESCRIPTION,
        "region": "almaty",
        "address": f"Abai avenue {k % 200 + 1}",
        "lat": f"{43.20 + (k % 97) * 0.001:.4f}",
        "long": f"{76.85 + (k % 89) * 0.001:.4f}",
        "occurred_at": "",
    }


class Client:
    """One simulated reporter: a keep-alive connection and, for the web form, its CSRF cookie and token."""

    def __init__(self, port: int, scenario: str, photo: bytes | None, index: int) -> None:
        self.scenario = scenario
        self.photo = photo
        self.index = index
        self.http = httpx.Client(base_url=f"http://{HOST}:{port}", timeout=120, headers={"Accept-Language": "en"})
        self.csrf = ""
        if scenario != "open311":
            page = self.http.get("/reports/new")
            found = CSRF_RE.search(page.text)
            if page.status_code != 200 or not found:
                raise SystemExit(f"GET /reports/new: HTTP {page.status_code}, no CSRF field")
            self.csrf = found.group(1)

    def submit(self, k: int) -> tuple[bool, float]:
        """File one report; returns (ok, seconds of the filing request)."""
        fields = report_fields(self.index * 100_000 + k)
        if self.scenario == "open311":
            form = {
                "service_code": fields["category"],
                "description": fields["description"],
                "attribute[region]": "almaty",
                "lat": fields["lat"],
                "long": fields["long"],
                "address_string": fields["address"],
            }
            t0 = time.perf_counter()
            response = self.http.post("/open311/v2/requests.json", data=form)
            elapsed = time.perf_counter() - t0
            return response.status_code in (200, 201) and '"token"' in response.text, elapsed
        form = {"_csrf": self.csrf, **fields}
        check = self.http.post("/reports/check", data=form)
        if check.status_code != 200:
            return False, 0.0
        body, content_type = _multipart(form, self.photo if self.scenario == "form+photo" else None)
        t0 = time.perf_counter()
        response = self.http.post("/reports/send", content=body, headers={"Content-Type": content_type})
        elapsed = time.perf_counter() - t0
        return response.status_code == 200 and 'data-testid="receipt"' in response.text, elapsed

    def close(self) -> None:
        self.http.close()


@dataclass
class Run:
    scenario: str
    concurrency: int
    done: int
    seconds: float
    errors: int
    latencies_ms: list[float]
    server_cores: float

    @property
    def per_second(self) -> float:
        return self.done / self.seconds


def run_submissions(proc: Any, port: int, scenario: str, concurrency: int, photo: bytes | None, args: Any) -> Run:
    clients = [Client(port, scenario, photo, i) for i in range(concurrency)]
    start_at = time.time() + args.warmup
    end_at = start_at + args.seconds
    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"done": 0, "errors": 0}

    def loop(client: Client) -> None:
        k = 0
        while True:
            try:
                ok, elapsed = client.submit(k)
            except httpx.HTTPError:
                ok, elapsed = False, 0.0
            k += 1
            now = time.time()
            if now > end_at:
                return
            if now >= start_at:
                with lock:
                    if ok:
                        counts["done"] += 1
                        latencies.append(elapsed * 1000)
                    else:
                        counts["errors"] += 1

    threads = [threading.Thread(target=loop, args=(c,)) for c in clients]
    for th in threads:
        th.start()
    while time.time() < start_at:
        time.sleep(0.01)
    cpu0 = cpu_seconds_of_group(proc.pid)
    while time.time() < end_at:
        time.sleep(0.01)
    cpu = cpu_seconds_of_group(proc.pid) - cpu0
    for th in threads:
        th.join()
    for c in clients:
        c.close()
    return Run(scenario, concurrency, counts["done"], args.seconds, counts["errors"], latencies, cpu / args.seconds)


def check_scrub(port: int, password: str, data_dir: Path, url: str | None) -> str:
    """An officer downloads one stored photo: it must carry no EXIF/GPS any more."""
    from qorgau.reports import tables as t

    engine = sa.create_engine(
        settings_for(data_dir, url).resolved_database_url.replace("postgresql://", "postgresql+psycopg://", 1)
    )
    with engine.connect() as conn:
        found = conn.execute(sa.select(t.report_attachments.c.report_id, t.report_attachments.c.id).limit(1)).first()
    engine.dispose()
    if found is None:
        return "no photo stored"
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=60) as client:
        page = client.get("/login")
        csrf = CSRF_RE.search(page.text)
        assert csrf is not None
        client.post("/login", data={"login": "serik.police", "password": password, "_csrf": csrf.group(1), "next": "/"})
        response = client.get(f"/police/reports/{found.report_id}/attachments/{found.id}")
    if response.status_code != 200:
        return f"could not download the photo (HTTP {response.status_code})"
    return (
        "EXIF/GPS still present!"
        if has_gps(response.content)
        else f"stored photo has no EXIF/GPS ({len(response.content):,} bytes)"
    )


# --------------------------------------------------------------------------- main


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, load average {load}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--postgres", metavar="URL", help="also run on a fresh database on this PostgreSQL server")
    parser.add_argument("--no-sqlite", action="store_true", help="skip the SQLite run (with --postgres)")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[1, 4],
        help="comma-separated concurrent reporters (default 1,4)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each run (default 2)")
    parser.add_argument(
        "--scenarios",
        type=lambda s: [x for x in s.split(",") if x],
        default=list(SCENARIOS),
        help=f"comma-separated, from {', '.join(SCENARIOS)} (default all)",
    )
    parser.add_argument("--photo-kb", type=int, default=1024, help="size of the JPEG photo (default 1024 KiB)")
    parser.add_argument("--stats-reports", type=int, default=1_000_000, help="reports to seed (default 10^6; 0: none)")
    parser.add_argument("--no-bare-rows", action="store_true", help="seed only the aggregate, not the report rows")
    parser.add_argument("--stats-requests", type=int, default=200, help="measured requests per statistics URL")
    args = parser.parse_args(argv)
    bad = [s for s in args.scenarios if s not in SCENARIOS]
    if bad:
        parser.error(f"unknown scenario(s): {', '.join(bad)}")
    if min(args.concurrency) < 1 or args.stats_requests < 1 or args.photo_kb < 1:
        parser.error("--concurrency, --stats-requests and --photo-kb must be positive")
    if args.no_sqlite and not args.postgres:
        parser.error("--no-sqlite needs --postgres")
    return args


def repeat_command(args: argparse.Namespace) -> str:
    cmd = [".venv/bin/python", "bench/reports.py"]
    if args.postgres:
        cmd += ["--postgres", args.postgres]
    if args.no_sqlite:
        cmd += ["--no-sqlite"]
    cmd += ["--concurrency", ",".join(map(str, args.concurrency)), "--seconds", f"{args.seconds:g}"]
    cmd += ["--warmup", f"{args.warmup:g}", "--scenarios", ",".join(args.scenarios), "--photo-kb", str(args.photo_kb)]
    cmd += ["--stats-reports", str(args.stats_reports), "--stats-requests", str(args.stats_requests)]
    if args.no_bare_rows:
        cmd += ["--no-bare-rows"]
    return shlex.join(cmd)


def run_database(postgres: str | None, args: argparse.Namespace, photo: bytes) -> bool:
    ok = True
    with fresh_database(postgres) as (url, data_dir, label):
        print(f"\n=== {label}")
        with server(data_dir, url) as (proc, port, cmd, passed):
            password = officer_password(data_dir, url)
            shown = " ".join(f"{k}={v}" for k, v in passed.items())
            print(f"server: {shown} {shlex.join(cmd)}  (pid {proc.pid})")
            if args.stats_reports:
                seconds, rows = seed(data_dir, url, args.stats_reports, not args.no_bare_rows)
                what = (
                    f"report_stats aggregate for {args.stats_reports:,} reports + {rows:,} bare metadata rows in "
                    "`reports` (no content, history, messages or ledger entries)"
                    if rows
                    else f"report_stats aggregate for {args.stats_reports:,} reports only (no rows in `reports`)"
                )
                print(f"seeded in {seconds:.0f} s: {what}")
                timings, sample = measure_statistics(port, args.stats_requests, 10)
                total = sample.get("total", {}).get("display")
                print(
                    f"statistics ({args.stats_requests} sequential requests each after 10 warm-up; page total {total}):"
                )
                print(f"  {'request':<46}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
                for timing in timings:
                    p99 = pct(timing.latencies_ms, 0.99)
                    print(f"  {timing.label:<46}{pct(timing.latencies_ms, 0.5):>9.1f}{p99:>9.1f}{timing.errors:>8}")
                    ok = ok and timing.errors == 0
            print(
                f"submissions (closed loop, one thread + keep-alive connection per reporter; "
                f"{args.warmup:g} s warm-up, {args.seconds:g} s measured; "
                f"photo {len(photo) / 1024:,.0f} KiB JPEG with EXIF/GPS):"
            )
            print(
                f"  {'route':<34}{'conc':>5}{'reports/s':>11}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'server CPU':>12}"
            )
            labels = {
                "form": "web form (check + send)",
                "form+photo": "web form + 1 photo (check + send)",
                "open311": "Open311 POST requests.json",
            }
            for scenario in args.scenarios:
                for c in args.concurrency:
                    r = run_submissions(proc, port, scenario, c, photo, args)
                    ok = ok and r.errors == 0 and r.done > 0
                    print(
                        f"  {labels[scenario]:<34}{c:>5}{r.per_second:>11.1f}{pct(r.latencies_ms, 0.5):>9.1f}"
                        f"{pct(r.latencies_ms, 0.99):>9.1f}{r.errors:>8}{r.server_cores:>9.2f} cr",
                        flush=True,
                    )
            if "form+photo" in args.scenarios:
                verdict = check_scrub(port, password, data_dir, url)
                print(f"scrub check: {verdict}")
                ok = ok and verdict.startswith("stored photo has no")
    return ok


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"Qorgau citizen reports benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"machine: {machine()}")
    started = time.perf_counter()
    photo = photo_with_gps(args.photo_kb)
    if not has_gps(photo):
        raise SystemExit("the generated photo has no EXIF/GPS")
    ok = True
    if not args.no_sqlite:
        ok = run_database(None, args, photo) and ok
    if args.postgres:
        ok = run_database(args.postgres, args, photo) and ok
    print("\n(latency: of the request that files the report; cr: CPU cores the server used on average)")
    print(f"total {time.perf_counter() - started:.0f} s")
    print(f"repeat: {repeat_command(args)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
