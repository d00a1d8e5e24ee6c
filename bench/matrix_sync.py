"""Matrix /sync benchmark: one room, S senders and R long-polling receivers, over plain Matrix HTTP.

Run from the repository root::

    .venv/bin/python bench/matrix_sync.py                       # SQLite, one process: R=1, R=10, R=10 x 8 senders
    .venv/bin/python bench/matrix_sync.py --receivers 10 --senders 1 --messages 1000 --runs 5
    .venv/bin/python bench/matrix_sync.py --database-url postgresql://postgres@127.0.0.1:5432/test \
        --bus redis://127.0.0.1:6379/0 --workers 2
    .venv/bin/python bench/matrix_sync.py --url http://127.0.0.1:8008 --server-pid PID   # any homeserver
                                                                   # with open m.login.dummy registration

What it does (the same against any homeserver; only the Matrix client-server API is used):

1. Unless ``--url`` is given, starts ``qorgau serve --data-dir TMP --port FREE --demo
   --matrix-open-registration`` (plus ``--database-url/--bus/--workers``) and waits for
   ``/_matrix/client/versions``.  With ``--url`` the server is somebody else's; pass ``--server-pid``
   to have its RSS read.
2. Registers the senders and receivers (``/register`` with ``m.login.dummy``), or signs in with
   ``--users user:password,...`` (the first S are senders).  The first sender creates a public room;
   everybody else joins it.  Each receiver does an initial ``/sync`` (timeout=0) to get its token.
3. Each receiver long-polls ``/sync?since=...&timeout=30000`` (filter: timeline limit 1000, so nothing
   is cut by a ``limited`` timeline) on its own keep-alive connection and records, for each benchmark
   message, the first time it saw it (a second sighting counts as a duplicate).
4. The senders share M messages (sender k sends messages k, k+S, ...), each sending the next
   ``PUT /rooms/{room}/send/m.room.message/{txn}`` as soon as the previous one is acknowledged.
5. Figures: messages/s acknowledged (M / time from the first send to the last acknowledgement),
   end-to-end latency of each message (its send call's start -> the last receiver has it) p50/p99,
   messages lost (not seen by some receiver within ``--drain`` seconds after the last ack) and
   duplicated, and the server's peak RSS (VmHWM of the server process, or of each worker process).

The client is a minimal asyncio-streams HTTP/1.1 client (pre-built request heads, Content-Length or
chunked replies) in one process, so the benchmark takes as little of the shared CPU as possible.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds http.py, which must not shadow the standard library's http package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import asyncio  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import urllib.parse  # noqa: E402
import uuid  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench-password-123"
FILTER = urllib.parse.quote(json.dumps({"room": {"timeline": {"limit": 1000}}, "presence": {"types": []}}))


# --------------------------------------------------------------------------- a lean HTTP/1.1 client


class Http:
    """One keep-alive HTTP/1.1 connection (asyncio streams); requests on it are sequential."""

    def __init__(self, host: str, port: int, token: str | None = None) -> None:
        self.host, self.port, self.token = host, port, token
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port, limit=1 << 24)
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
            self.writer = None

    async def request(self, method: str, path: str, body: object | None = None) -> tuple[int, object]:
        if self.writer is None:
            await self._connect()
        assert self.reader is not None and self.writer is not None
        payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if self.token:
            head += f"Authorization: Bearer {self.token}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        head += f"Content-Length: {len(payload)}\r\n\r\n"
        self.writer.write(head.encode() + payload)
        status_line = await self.reader.readline()
        if not status_line:
            self.writer = None
            raise ConnectionError("connection closed by the server")
        status = int(status_line.split()[1])
        length, chunked, close = None, False, False
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and "close" in value.lower():
                close = True
        if chunked:
            parts = []
            while True:
                size = int((await self.reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readline()
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readline()
            raw = b"".join(parts)
        else:
            raw = await self.reader.readexactly(length or 0)
        if close:
            await self.close()
        return status, (json.loads(raw) if raw else None)


def check(status: int, body: object, what: str) -> dict:
    if status != 200 or not isinstance(body, dict):
        raise RuntimeError(f"{what}: HTTP {status}: {body}")
    return body


# --------------------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    url: str
    proc: subprocess.Popen | None = None
    pid: int | None = None
    data_dir: tempfile.TemporaryDirectory | None = None

    def pids(self) -> list[int]:
        root = self.pid or (self.proc.pid if self.proc else None)
        if root is None:
            return []
        found = [root]
        with contextlib.suppress(OSError):
            for child in Path(f"/proc/{root}/task/{root}/children").read_text().split():
                found.append(int(child))
        return found

    def rss_now_mib(self) -> float:
        total = 0.0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total = max(total, int(line.split()[1]) / 1024)
        return total

    def rss_peak_mib(self) -> list[float]:
        out = []
        for pid in self.pids():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        out.append(int(line.split()[1]) / 1024)
        return out

    def cpu_seconds(self) -> float:
        total = 0.0
        for pid in self.pids():
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> None:
        if self.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.data_dir is not None:
            self.data_dir.cleanup()


def start_server(args: argparse.Namespace) -> Server:
    if args.url:
        return Server(args.url.rstrip("/"), pid=args.server_pid)
    data_dir = tempfile.TemporaryDirectory(prefix="qorgau-bench-sync-")
    port = free_port()
    cmd = [str(ROOT / ".venv/bin/qorgau"), "serve", "--data-dir", data_dir.name, "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--demo", "--matrix-open-registration"]
    if args.database_url:
        cmd += ["--database-url", args.database_url]
    if args.bus:
        cmd += ["--bus", args.bus]
    if args.workers:
        cmd += ["--workers", str(args.workers)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("QORGAU_")}
    log = open(Path(data_dir.name) / "server.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    server = Server(f"http://127.0.0.1:{port}", proc=proc, data_dir=data_dir)
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the server exited: " + (Path(data_dir.name) / "server.log").read_text()[-3000:])
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.sendall(b"GET /_matrix/client/versions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    break
        except OSError:
            time.sleep(0.2)
    else:
        server.stop()
        raise RuntimeError("the server did not come up within 90 s")
    if args.workers and args.workers > 1:
        time.sleep(2.0)  # let every worker come up
    print("server:", shlex.join(cmd), flush=True)
    return server


# --------------------------------------------------------------------------- one run


@dataclass
class Result:
    senders: int
    receivers: int
    messages: int
    rate: float
    p50_ms: float
    p99_ms: float
    lost: int
    duplicated: int
    rss_mib: list[float] = field(default_factory=list)
    rss_messaging_mib: float = 0.0  # largest server process's RSS while messages flowed (sampled every 20 ms)
    server_cpu_ms: float = 0.0  # server CPU time per message
    client_cpu_ms: float = 0.0  # this benchmark's CPU time per message
    syncs_per_msg: float = 0.0  # /sync replies (all receivers) per message: how well replies coalesce


async def account(host: str, port: int, args: argparse.Namespace, i: int) -> tuple[str, str]:
    http = Http(host, port)
    try:
        if args.users:
            user, _, password = args.users.split(",")[i].partition(":")
            body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": user}, "password": password}
            found = check(*await http.request("POST", "/_matrix/client/v3/login", body), "login")
        else:
            body = {"username": f"b{uuid.uuid4().hex[:10]}", "password": PASSWORD, "auth": {"type": "m.login.dummy"}}
            found = check(*await http.request("POST", "/_matrix/client/v3/register", body), "register")
        return str(found["access_token"]), str(found["user_id"])
    finally:
        await http.close()


async def one_run(server: Server, args: argparse.Namespace, senders: int, receivers: int) -> Result:
    parsed = urllib.parse.urlsplit(server.url)
    host, port = parsed.hostname or "127.0.0.1", parsed.port or 80
    m = args.messages
    creds = [await account(host, port, args, i) for i in range(senders + receivers)]
    owner = Http(host, port, creds[0][0])
    room = check(
        *await owner.request("POST", "/_matrix/client/v3/createRoom", {"preset": "public_chat", "name": "bench"}),
        "createRoom",
    )["room_id"]
    await owner.close()
    quoted_room = urllib.parse.quote(room, safe="")
    for token, _user in creds[1:]:
        http = Http(host, port, token)
        check(*await http.request("POST", f"/_matrix/client/v3/join/{quoted_room}", {}), "join")
        await http.close()
    run_id = uuid.uuid4().hex[:8]
    started = [0.0] * m
    acked = [0.0] * m
    seen = [[0.0] * m for _ in range(receivers)]
    dups = [0]
    polls = [0]  # /sync replies received while the benchmark ran
    remaining = [m * receivers]
    all_seen = asyncio.Event()

    async def receive(r: int, token: str, ready: asyncio.Event) -> None:
        http = Http(host, port, token)
        body = check(*await http.request("GET", f"/_matrix/client/v3/sync?timeout=0&filter={FILTER}"), "sync")
        since = body["next_batch"]
        ready.set()
        mine = seen[r]
        try:
            while True:
                path = f"/_matrix/client/v3/sync?since={since}&timeout=30000&filter={FILTER}"
                body = check(*await http.request("GET", path), "sync")
                now = time.perf_counter()
                polls[0] += 1
                since = body["next_batch"]
                joined = (body.get("rooms") or {}).get("join") or {}
                events = ((joined.get(room) or {}).get("timeline") or {}).get("events") or []
                for ev in events:
                    mark = (ev.get("content") or {}).get("bench")
                    if not mark or mark.get("run") != run_id:
                        continue
                    seq = mark["seq"]
                    if mine[seq]:
                        dups[0] += 1
                    else:
                        mine[seq] = now
                        remaining[0] -= 1
                if remaining[0] == 0:
                    all_seen.set()
        finally:
            await http.close()

    async def send(k: int, token: str) -> None:
        http = Http(host, port, token)
        try:
            for seq in range(k, m, senders):
                path = f"/_matrix/client/v3/rooms/{quoted_room}/send/m.room.message/{run_id}-{seq}"
                body = {"msgtype": "m.text", "body": f"message {seq}", "bench": {"run": run_id, "seq": seq}}
                started[seq] = time.perf_counter()
                check(*await http.request("PUT", path, body), "send")
                acked[seq] = time.perf_counter()
        finally:
            await http.close()

    readies = [asyncio.Event() for _ in range(receivers)]
    tasks = [asyncio.create_task(receive(r, creds[senders + r][0], readies[r])) for r in range(receivers)]
    await asyncio.gather(*(e.wait() for e in readies))
    await asyncio.sleep(0.3)  # every receiver is long-polling
    cpu0, client0 = server.cpu_seconds(), time.process_time()
    polls[0] = 0
    rss_max = [server.rss_now_mib()]

    async def sample_rss() -> None:
        while True:
            await asyncio.sleep(0.02)
            rss_max[0] = max(rss_max[0], server.rss_now_mib())

    sampler = asyncio.create_task(sample_rss())
    await asyncio.gather(*(send(k, creds[k][0]) for k in range(senders)))
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(args.drain):
            await all_seen.wait()
    cpu1, client1 = server.cpu_seconds(), time.process_time()
    syncs = polls[0]
    sampler.cancel()
    await asyncio.sleep(0.2)  # late duplicates
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    lost = sum(1 for seq in range(m) if any(not seen[r][seq] for r in range(receivers)))
    lat = sorted(
        max(seen[r][seq] for r in range(receivers)) - started[seq]
        for seq in range(m)
        if all(seen[r][seq] for r in range(receivers))
    )
    span = max(acked) - min(started)

    def pct(q: float) -> float:
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")

    return Result(
        senders,
        receivers,
        m,
        m / span,
        pct(0.50),
        pct(0.99),
        lost,
        dups[0],
        server.rss_peak_mib(),
        rss_max[0],
        (cpu1 - cpu0) * 1000 / m,
        (client1 - client0) * 1000 / m,
        syncs / m,
    )


def median_result(results: list[Result]) -> Result:
    r0 = results[0]
    return Result(
        r0.senders,
        r0.receivers,
        r0.messages,
        statistics.median(r.rate for r in results),
        statistics.median(r.p50_ms for r in results),
        statistics.median(r.p99_ms for r in results),
        sum(r.lost for r in results),
        sum(r.duplicated for r in results),
        [max(vals) for vals in zip(*(r.rss_mib for r in results), strict=False)],
        max(r.rss_messaging_mib for r in results),
        statistics.median(r.server_cpu_ms for r in results),
        statistics.median(r.client_cpu_ms for r in results),
        statistics.median(r.syncs_per_msg for r in results),
    )


def fmt(r: Result, runs: int) -> str:
    rss = "/".join(f"{v:.0f}" for v in r.rss_mib) or "?"
    return (
        f"S={r.senders:<2} R={r.receivers:<3} M={r.messages:<5} {r.rate:8.1f} msg/s   e2e p50 {r.p50_ms:6.1f} ms"
        f"  p99 {r.p99_ms:6.1f} ms   lost {r.lost}  dup {r.duplicated}   RSS {r.rss_messaging_mib:.0f} MiB (peak {rss})"
        f"   CPU/msg server {r.server_cpu_ms:.2f} ms bench {r.client_cpu_ms:.2f} ms"
        f"   /sync replies/msg {r.syncs_per_msg:.2f}   (median of {runs})"
    )


async def main_async(args: argparse.Namespace) -> None:
    server = start_server(args)
    try:
        print(f"idle RSS after start: {'/'.join(f'{v:.0f}' for v in server.rss_peak_mib()) or '?'} MiB", flush=True)
        for scenario in args.scenarios.split(","):
            s, _, r = scenario.partition("x")
            results = []
            for _ in range(args.runs):
                results.append(await one_run(server, args, int(s), int(r)))
                print("  ", fmt(results[-1], 1), flush=True)
            print(fmt(median_result(results), args.runs), flush=True)
    finally:
        server.stop()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenarios", default="1x1,1x10,8x10", help="SENDERSxRECEIVERS,... (default 1x1,1x10,8x10)")
    p.add_argument("--messages", type=int, default=1000, help="M, messages per run (default 1000)")
    p.add_argument("--runs", type=int, default=3, help="runs per scenario; the median is reported (default 3)")
    p.add_argument("--drain", type=float, default=15.0, help="seconds to wait for stragglers after the last ack")
    p.add_argument("--url", help="a running homeserver (with open m.login.dummy registration, or --users)")
    p.add_argument("--users", help="user:password,... to sign in instead of registering (senders first)")
    p.add_argument("--server-pid", type=int, help="with --url: the server's pid, to read its peak RSS")
    p.add_argument("--database-url", help="qorgau serve --database-url (default: SQLite in the temp dir)")
    p.add_argument("--bus", help="qorgau serve --bus, e.g. redis://127.0.0.1:6379/0")
    p.add_argument("--workers", type=int, help="qorgau serve --workers (>1 needs --bus redis://)")
    args = p.parse_args()
    print(
        f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"load {os.getloadavg()[0]:.2f} at start",
        flush=True,
    )
    print("bench:", shlex.join([sys.executable, *sys.argv]), flush=True)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
