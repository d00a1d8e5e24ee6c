"""HTTP benchmark: requests/s and latency of signed-in requests against a real ``qorgau serve``.

Run from the repository root (``make bench`` runs it with the defaults)::

    .venv/bin/python bench/http.py
    .venv/bin/python bench/http.py --concurrency 1,16,64 --seconds 10 --workers 2 --bus redis://127.0.0.1:6379/0

What it does:

1. Starts the real server as a subprocess on a free loopback port with a fresh SQLite data dir:
   ``qorgau serve --data-dir TMP --port PORT --demo`` (no QORGAU_* variables are passed on).
   The demo admin's password comes from ``qorgau.demo.demo_password`` on a kernel built on the
   same data dir before the server starts (nothing is parsed from the server's output).
2. Signs in as ``admin`` with httpx (login form + its CSRF token) and reads the session's CSRF
   token from ``/account``.
3. For each scenario and each ``--concurrency`` level, separate load processes (``--processes``,
   spawned, never the server's) run closed-loop clients: one thread and one keep-alive HTTP/1.1
   connection per concurrent request, each sending the next request as soon as the previous
   answer is read.  The client is a minimal raw-socket one (pre-built request bytes, replies read
   by Content-Length), so on a 2-core machine the load generator takes as little CPU from the
   server as possible.  After ``--warmup`` seconds the next ``--seconds`` are measured.

Scenarios (every reply's status is checked; anything else counts as an error):

* ``me``: ``GET /api/v1/me`` with the session cookie (JSON; resolves the session in the database);
* ``account``: ``GET /account`` with the session cookie (a full server-rendered page);
* ``lang``: ``POST /lang`` with the session cookie and the ``_csrf`` form field (CSRF check,
  then a write transaction setting the user's language, then a 302 redirect).
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds this http.py, which must not shadow the standard library's http package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import contextlib  # noqa: E402
import multiprocessing as mp  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import re  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

HOST = "127.0.0.1"
CSRF_RE = re.compile(r'name="_csrf" value="([0-9a-f]{64})"')
SCENARIOS = ("me", "account", "lang")


# --------------------------------------------------------------------------- a minimal HTTP/1.1 client


class Conn:
    """One keep-alive HTTP/1.1 connection that sends pre-built requests and reads whole replies."""

    def __init__(self, host: str, port: int) -> None:
        self.addr = (host, port)
        self.sock: socket.socket | None = None
        self.buf = b""

    def _connect(self) -> socket.socket:
        sock = socket.create_connection(self.addr, timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock, self.buf = sock, b""
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def _fill(self, sock: socket.socket) -> None:
        data = sock.recv(262144)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data

    def request(self, raw: bytes) -> int:
        """Send ``raw`` and return the reply's status once its whole body has been read."""
        sock = self.sock or self._connect()
        sock.sendall(raw)
        while (end := self.buf.find(b"\r\n\r\n")) < 0:
            self._fill(sock)
        head = self.buf[:end].decode("latin-1")
        self.buf = self.buf[end + 4 :]
        status = int(head[9:12])
        length = None
        chunked = close = False
        for line in head.split("\r\n")[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and "close" in value.lower():
                close = True
        if chunked:
            self._read_chunked(sock)
        elif length is not None:
            while len(self.buf) < length:
                self._fill(sock)
            self.buf = self.buf[length:]
        elif status >= 200 and status not in (204, 304):
            close = True  # body until EOF: not expected from uvicorn, but be correct
            with contextlib.suppress(ConnectionError):
                while True:
                    self._fill(sock)
        if close:
            self.close()
        return status

    def _read_chunked(self, sock: socket.socket) -> None:
        while True:
            while (eol := self.buf.find(b"\r\n")) < 0:
                self._fill(sock)
            size = int(self.buf[:eol].split(b";")[0], 16)
            self.buf = self.buf[eol + 2 :]
            while len(self.buf) < size + 2:
                self._fill(sock)
            self.buf = self.buf[size + 2 :]
            if size == 0:
                return


def build_request(method: str, path: str, cookie: str, body: bytes = b"", content_type: str = "") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", f"Cookie: {cookie}", "Accept: */*"]
    if method != "GET":
        lines += [f"Content-Type: {content_type}", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


# --------------------------------------------------------------------------- load processes


@dataclass(frozen=True)
class LoadSpec:
    port: int
    request: bytes
    expect: tuple[int, ...]
    threads: int


def drive(spec: LoadSpec, ready: Any, go: Any, window: Any, out: Any) -> None:
    """A load process: ``spec.threads`` closed-loop clients; puts (latencies µs, errors, other, cpu s) on ``out``.

    ``window`` holds the time.time() at which measuring starts (after the warm-up) and ends; it is
    set by the parent before ``go``.
    """
    results: list[tuple[list[float], int, int]] = []
    lock = threading.Lock()
    conns = [Conn(HOST, spec.port) for _ in range(spec.threads)]
    for c in conns:
        c._connect()

    def client(conn: Conn) -> None:
        lat: list[float] = []
        errors = 0
        other = 0
        now = time.time
        clock = time.perf_counter_ns
        while True:
            t0 = clock()
            try:
                status = conn.request(spec.request)
            except (OSError, ConnectionError, ValueError):
                status = -1
                conn.close()
            t1 = clock()
            wall = now()
            if wall > end_at:
                break
            if wall >= start_at:
                if status in spec.expect:
                    lat.append((t1 - t0) / 1000)
                elif status == -1:
                    errors += 1
                else:
                    other += 1
        conn.close()
        with lock:
            results.append((lat, errors, other))

    ready.set()
    go.wait()
    start_at, end_at = window[0], window[1]
    threads = [threading.Thread(target=client, args=(c,)) for c in conns]
    for t in threads:
        t.start()
    while time.time() < start_at:
        time.sleep(0.01)
    cpu0 = time.process_time()
    for t in threads:
        t.join()
    cpu = time.process_time() - cpu0
    lat = [x for r in results for x in r[0]]
    out.put((lat, sum(r[1] for r in results), sum(r[2] for r in results), cpu))


def cpu_seconds_of_group(pgid: int) -> float:
    """User + system CPU seconds of every process in process group ``pgid`` (the server and its workers)."""
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
        if int(fields[2]) == pgid:  # field 5: pgrp
            total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return total / tick


@dataclass
class Result:
    scenario: str
    concurrency: int
    requests: int
    seconds: float
    errors: int
    unexpected: int
    latencies_us: list[float]
    server_cores: float
    client_cores: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def run_load(
    server_pgid: int, port: int, scenario: str, request: bytes, expect: tuple[int, ...], concurrency: int, args: Any
) -> Result:
    ctx = mp.get_context("spawn")
    procs = max(1, min(args.processes, concurrency))
    shares = [concurrency // procs + (1 if i < concurrency % procs else 0) for i in range(procs)]
    out = ctx.Queue()
    go = ctx.Event()
    window = ctx.Array("d", 2)
    readies = [ctx.Event() for _ in shares]
    processes = []
    for share, ready in zip(shares, readies, strict=True):
        spec = LoadSpec(port, request, expect, share)
        p = ctx.Process(target=drive, args=(spec, ready, go, window, out), daemon=True)
        p.start()
        processes.append(p)
    for ready in readies:
        if not ready.wait(timeout=60):
            raise SystemExit("a load process did not start in time")
    # One window for every process, fixed once all are connected.
    start_at = time.time() + args.warmup
    end_at = start_at + args.seconds
    window[0], window[1] = start_at, end_at
    go.set()
    while time.time() < start_at:
        time.sleep(0.005)
    server_cpu0 = cpu_seconds_of_group(server_pgid)
    while time.time() < end_at:
        time.sleep(0.005)
    server_cpu = cpu_seconds_of_group(server_pgid) - server_cpu0
    lat: list[float] = []
    errors = unexpected = 0
    client_cpu = 0.0
    for _ in processes:
        part, err, other, cpu = out.get(timeout=60)
        lat.extend(part)
        errors += err
        unexpected += other
        client_cpu += cpu
    for p in processes:
        p.join(timeout=10)
    return Result(
        scenario,
        concurrency,
        len(lat),
        args.seconds,
        errors,
        unexpected,
        lat,
        server_cpu / args.seconds,
        client_cpu / args.seconds,
    )


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def admin_password(data_dir: Path) -> str:
    """The demo admin's password, from a kernel on the server's data dir (built before the server starts)."""
    from qorgau.demo import demo_password
    from qorgau.kernel.context import build_kernel
    from qorgau.settings import load_settings

    kernel = build_kernel(load_settings(env={}, data_dir=data_dir), start_writer=False)
    try:
        return demo_password(kernel, "admin")
    finally:
        kernel.close()


@contextlib.contextmanager
def server(data_dir: Path, args: argparse.Namespace) -> Any:
    port = free_port()
    exe = Path(sys.executable).parent / "qorgau"
    cmd = [str(exe), "serve", "--data-dir", str(data_dir), "--host", HOST, "--port", str(port), "--demo"]
    if args.workers > 1:
        cmd += ["--workers", str(args.workers), "--bus", args.bus]
    env = {k: v for k, v in os.environ.items() if not k.startswith("QORGAU_")}
    log_path = data_dir / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        wait_ready(proc, port, log_path)
        yield proc, port, cmd
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)


def wait_ready(proc: subprocess.Popen[bytes], port: int, log_path: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited ({proc.returncode}):\n{log_path.read_text(errors='replace')[-3000:]}")
        with contextlib.suppress(OSError, ConnectionError, ValueError):
            conn = Conn(HOST, port)
            try:
                if conn.request(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\n\r\n".encode()) == 200:
                    return
            finally:
                conn.close()
        time.sleep(0.2)
    raise SystemExit("the server did not become ready in 120 s")


def sign_in(port: int, password: str) -> tuple[str, str]:
    """Sign in as the demo admin; return (Cookie header value, the session's CSRF token)."""
    import httpx

    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=30) as client:
        page = client.get("/login")
        found = CSRF_RE.search(page.text)
        if not found:
            raise SystemExit("the login page has no CSRF field")
        response = client.post(
            "/login",
            data={"login": "admin", "password": password, "_csrf": found.group(1), "next": "/"},
            follow_redirects=False,
        )
        if response.status_code not in (302, 303):
            raise SystemExit(f"sign-in failed: HTTP {response.status_code}")
        session = client.cookies.get("qorgau_session")
        if not session:
            raise SystemExit("sign-in set no session cookie")
        me = client.get("/api/v1/me").json()
        if me.get("username") != "admin":
            raise SystemExit(f"unexpected /api/v1/me: {me}")
        found = CSRF_RE.search(client.get("/account").text)
        if not found:
            raise SystemExit("/account has no CSRF field")
        return f"qorgau_session={session}", found.group(1)


def scenario_requests(cookie: str, csrf: str) -> dict[str, tuple[str, bytes, tuple[int, ...]]]:
    form = urllib.parse.urlencode({"lang": "kk", "_csrf": csrf, "next": "/"}).encode()
    return {
        "me": ("GET /api/v1/me", build_request("GET", "/api/v1/me", cookie), (200,)),
        "account": ("GET /account", build_request("GET", "/account", cookie), (200,)),
        "lang": (
            "POST /lang (+_csrf)",
            build_request("POST", "/lang", cookie, form, "application/x-www-form-urlencoded"),
            (302, 303),
        ),
    }


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
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[1, 16],
        help="comma-separated concurrent connections (default 1,16)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds per run (default 10)")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds before each run (default 2)")
    parser.add_argument(
        "--scenarios",
        type=lambda s: [x for x in s.split(",") if x],
        default=list(SCENARIOS),
        help=f"comma-separated, from {', '.join(SCENARIOS)} (default all)",
    )
    parser.add_argument("--processes", type=int, default=1, help="load-generating processes (default 1)")
    parser.add_argument("--workers", type=int, default=1, help="server worker processes (default 1)")
    parser.add_argument("--bus", default="redis://127.0.0.1:6379/0", help="event bus when --workers > 1")
    args = parser.parse_args(argv)
    bad = [s for s in args.scenarios if s not in SCENARIOS]
    if bad:
        parser.error(f"unknown scenario(s): {', '.join(bad)}")
    if min(args.concurrency) < 1 or args.processes < 1 or args.workers < 1:
        parser.error("--concurrency, --processes and --workers must be positive")
    return args


def repeat_command(args: argparse.Namespace) -> str:
    cmd = [".venv/bin/python", "bench/http.py", "--concurrency", ",".join(map(str, args.concurrency))]
    cmd += ["--seconds", f"{args.seconds:g}", "--warmup", f"{args.warmup:g}"]
    cmd += ["--scenarios", ",".join(args.scenarios), "--processes", str(args.processes)]
    if args.workers > 1:
        cmd += ["--workers", str(args.workers), "--bus", args.bus]
    return shlex.join(cmd)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"Qorgau HTTP benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"machine: {machine()}")
    started = time.perf_counter()
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="qorgau-bench-http-") as tmp:
        data_dir = Path(tmp) / "data"
        password = admin_password(data_dir)
        with server(data_dir, args) as (proc, port, cmd):
            print(f"server: {shlex.join(cmd)}  (pid {proc.pid}, SQLite in {data_dir})")
            cookie, csrf = sign_in(port, password)
            requests = scenario_requests(cookie, csrf)
            print(
                f"load: {args.processes} spawned process(es), one thread + keep-alive connection per concurrent "
                f"request; {args.warmup:g} s warm-up, {args.seconds:g} s measured"
            )
            print(
                f"  {'request':<22}{'conc':>5}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
                f"{'server CPU':>12}{'client CPU':>12}"
            )
            for name in args.scenarios:
                label, raw, expect = requests[name]
                probe = Conn(HOST, port)
                status = probe.request(raw)
                probe.close()
                if status not in expect:
                    raise SystemExit(f"{label}: HTTP {status}, expected {expect}")
                for c in args.concurrency:
                    r = run_load(proc.pid, port, name, raw, expect, c, args)
                    results.append(r)
                    print(
                        f"  {label:<22}{c:>5}{r.per_second:>10,.0f}{pct(r.latencies_us, 0.5) / 1000:>9.2f}"
                        f"{pct(r.latencies_us, 0.99) / 1000:>9.2f}{r.errors + r.unexpected:>8}"
                        f"{r.server_cores:>9.2f} cr{r.client_cores:>9.2f} cr",
                        flush=True,
                    )
    print("(cr: CPU cores busy on average during the measured seconds; 'errors' counts failed or unexpected replies)")
    print(f"total {time.perf_counter() - started:.0f} s")
    print(f"repeat: {repeat_command(args)}")
    return 1 if any(r.errors or r.unexpected for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
