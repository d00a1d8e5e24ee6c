"""Ledger benchmark: appends/s through the group-commit writer, and proof latency at 10^6 entries.

Run from the repository root (``make bench`` runs it with the defaults)::

    .venv/bin/python bench/ledger.py                       # SQLite in a temporary directory
    .venv/bin/python bench/ledger.py --postgres postgresql://postgres@127.0.0.1:5432/test

Every run gets a fresh database: a new SQLite file in a temporary directory (or in the directory of
``--database-url sqlite:///PATH``), or a new ``qorgau_bench_<hex>`` database created on the server of
a PostgreSQL URL (the URL's own database is only used to CREATE and DROP it) and dropped afterwards.

1. Throughput: ``--writers`` threads (default 1, 8 and 64) each call, in a loop, ::

       kernel.writer.run(lambda tx: kernel.ledger.append(tx, entry_type=..., actor=..., ...))

   for ``--seconds`` after a short warm-up; the figure is committed appends per second (each
   ``run`` returns only once its batch is durable), with the per-append latency and the mean
   group-commit batch size.
2. Proofs: the log is grown to ``--entries`` (default 10^6) with ``Ledger.append`` in one
   transaction per 10,000 entries (the time this took is printed), then ``--samples`` inclusion
   proofs (random leaf, current size) and consistency proofs (random first size, current size)
   are timed through ``Ledger.inclusion_proof`` / ``Ledger.consistency_proof``; a few are
   verified against the root to make sure the work is real.

Entries look like the platform's own: a role-prefixed keyed hash as actor, a keyed hash as
subject (one of 8,192), and a small object with an id, a status and a counter.
"""

from __future__ import annotations

import sys
from pathlib import Path

# bench/ holds http.py, which must not shadow the standard library's http package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]


import argparse  # noqa: E402
import contextlib  # noqa: E402
import cProfile  # noqa: E402
import hashlib  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import pstats  # noqa: E402
import random  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from typing import Any  # noqa: E402

import sqlalchemy as sa  # noqa: E402

from qorgau.kernel.context import Kernel, build_kernel  # noqa: E402
from qorgau.kernel.ledger import merkle  # noqa: E402
from qorgau.migrations import upgrade  # noqa: E402
from qorgau.settings import load_settings  # noqa: E402

BUILD_BATCH = 10_000
WARMUP_SECONDS = 1.0
PAYLOADS = 8192
ACTOR = "official:" + hashlib.sha256(b"bench-actor").hexdigest()


def _payloads(n: int = PAYLOADS) -> list[tuple[str, dict[str, Any]]]:
    rng = random.Random(8785)
    out = []
    for i in range(n):
        subject = hashlib.sha256(b"subject%d" % i).hexdigest()
        obj = {"case": uuid.UUID(int=rng.getrandbits(128), version=4).hex, "status": "open", "step": i}
        out.append((subject, obj))
    return out


def _append(kernel: Kernel, tx: Any, payload: tuple[str, dict[str, Any]]) -> int:
    subject, obj = payload
    return kernel.ledger.append(tx, entry_type="decision", actor=ACTOR, action="case.update", subject=subject, obj=obj)


# --------------------------------------------------------------------------- databases


@contextlib.contextmanager
def fresh_database(url: str | None) -> Iterator[tuple[str, Path, str]]:
    """Yield ``(database url, data dir, label)`` for a database created for this run, then remove it."""
    if url is None or url.startswith("sqlite"):
        parent = None
        if url:
            path = sa.engine.make_url(url).database
            if not path or path == ":memory:":
                raise SystemExit("--database-url sqlite:///PATH needs a file path (its folder is used)")
            parent = str(Path(path).resolve().parent)
        with tempfile.TemporaryDirectory(prefix="qorgau-bench-", dir=parent) as tmp:
            db_file = Path(tmp) / "qorgau.db"
            yield f"sqlite:///{db_file}", Path(tmp), f"SQLite ({db_file.parent})"
        return
    if not url.startswith("postgresql"):
        raise SystemExit("database URLs must start with sqlite: or postgresql")
    server = sa.engine.make_url(url)
    if server.drivername == "postgresql":
        server = server.set(drivername="postgresql+psycopg")
    name = f"qorgau_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        version = conn.exec_driver_sql("SHOW server_version").scalar()
    try:
        with tempfile.TemporaryDirectory(prefix="qorgau-bench-") as tmp:
            target = server.set(database=name).render_as_string(hide_password=False)
            yield target, Path(tmp), f"PostgreSQL {version} ({server.host}:{server.port or 5432}/{name})"
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def open_kernel(url: str, data_dir: Path) -> Kernel:
    settings = load_settings(env={}, data_dir=data_dir, database_url=url, log_json=False)
    upgrade(settings)
    return build_kernel(settings)


# --------------------------------------------------------------------------- measurements


def pct(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank; values need not be sorted."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


@dataclass
class Throughput:
    writers: int
    appends: int
    seconds: float
    batches: int
    latencies_us: list[float] = field(repr=False)

    @property
    def per_second(self) -> float:
        return self.appends / self.seconds

    @property
    def mean_batch(self) -> float:
        return self.appends / self.batches if self.batches else float("nan")


def measure_throughput(kernel: Kernel, writers: int, seconds: float) -> Throughput:
    payloads = _payloads()
    stop = threading.Event()
    window: list[int] = [0, 0]  # perf_counter_ns of the measured interval
    results: list[list[tuple[int, int]]] = [[] for _ in range(writers)]
    run = kernel.writer.run

    def worker(w: int) -> None:
        done = results[w]
        i = w
        while not stop.is_set():
            payload = payloads[i % PAYLOADS]
            t0 = time.perf_counter_ns()
            run(lambda tx, p=payload: _append(kernel, tx, p))
            t1 = time.perf_counter_ns()
            done.append((t1, t1 - t0))
            i += writers

    threads = [threading.Thread(target=worker, args=(w,), daemon=True) for w in range(writers)]
    for t in threads:
        t.start()
    time.sleep(WARMUP_SECONDS)
    jobs0, batches0, window[0] = kernel.writer.jobs, kernel.writer.batches, time.perf_counter_ns()
    time.sleep(seconds)
    jobs1, batches1, window[1] = kernel.writer.jobs, kernel.writer.batches, time.perf_counter_ns()
    stop.set()
    for t in threads:
        t.join()
    lat = [d / 1000 for r in results for end, d in r if window[0] <= end <= window[1]]
    return Throughput(writers, jobs1 - jobs0, (window[1] - window[0]) / 1e9, batches1 - batches0, lat)


def grow_log(kernel: Kernel, entries: int) -> tuple[int, float]:
    """Append (in one transaction per BUILD_BATCH) until the log has ``entries``; return (added, s)."""
    payloads = _payloads()
    start = time.perf_counter()
    added = 0
    size = kernel.ledger.size()
    last_report = start
    while size < entries:
        n = min(BUILD_BATCH, entries - size)
        with kernel.db.transaction() as tx:
            for i in range(n):
                _append(kernel, tx, payloads[(size + i) % PAYLOADS])
        size += n
        added += n
        now = time.perf_counter()
        if now - last_report > 15:
            print(f"    ... {size:,} entries ({added / (now - start):,.0f} appends/s)", flush=True)
            last_report = now
    return added, time.perf_counter() - start


@dataclass
class ProofTimes:
    size: int
    inclusion_us: list[float]
    consistency_us: list[float]
    inclusion_len: float
    consistency_len: float


def measure_proofs(kernel: Kernel, samples: int) -> ProofTimes:
    ledger = kernel.ledger
    size = ledger.size()
    rng = random.Random(9162)
    root = ledger.root_at(size)
    # Correctness first: a few proofs must verify, or the timings below mean nothing.
    for _ in range(5):
        index = rng.randrange(size)
        [(_, leaf)] = ledger.entries(index, index)
        path = ledger.inclusion_proof(index, size)
        if not merkle.verify_inclusion(merkle.leaf_hash(leaf), index, size, path, root):
            raise SystemExit(f"inclusion proof for leaf {index} does not verify")
        first = rng.randrange(1, size + 1)
        proof = ledger.consistency_proof(first, size)
        if not merkle.verify_consistency(first, size, ledger.root_at(first), root, proof):
            raise SystemExit(f"consistency proof {first} -> {size} does not verify")

    def timed(fn: Any, args: list[tuple[int, int]]) -> tuple[list[float], float]:
        for a in args[: max(1, len(args) // 10)]:  # warm-up
            fn(*a)
        out = []
        lengths = 0
        for a in args:
            t0 = time.perf_counter_ns()
            proof = fn(*a)
            out.append((time.perf_counter_ns() - t0) / 1000)
            lengths += len(proof)
        return out, lengths / len(args)

    inc, inc_len = timed(ledger.inclusion_proof, [(rng.randrange(size), size) for _ in range(samples)])
    con, con_len = timed(ledger.consistency_proof, [(rng.randrange(1, size), size) for _ in range(samples)])
    return ProofTimes(size, inc, con, inc_len, con_len)


def profile_appends(kernel: Kernel, n: int = 20_000) -> None:
    """cProfile of ``n`` appends in one transaction (the writer's per-job work, minus the commit)."""
    payloads = _payloads()
    prof = cProfile.Profile()
    with kernel.db.transaction() as tx:
        prof.enable()
        for i in range(n):
            _append(kernel, tx, payloads[i % PAYLOADS])
        prof.disable()
    print(f"  cProfile of {n:,} appends in one transaction (top 15 by own time):")
    pstats.Stats(prof, stream=sys.stdout).strip_dirs().sort_stats("tottime").print_stats(15)


# --------------------------------------------------------------------------- report


def machine() -> str:
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), Python {platform.python_version()}, load average {load}"


def run_one(url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    with fresh_database(url) as (db_url, data_dir, label):
        print(f"\n== {label}", flush=True)
        kernel = open_kernel(db_url, data_dir)
        result: dict[str, Any] = {"label": label, "throughput": [], "proofs": None}
        try:
            print(
                f"  group-commit writer: window {kernel.writer.window * 1000:g} ms, max batch {kernel.writer.max_batch}"
            )
            if args.profile:
                profile_appends(kernel)
            for n in args.writers:
                t = measure_throughput(kernel, n, args.seconds)
                result["throughput"].append(t)
                print(
                    f"  {n:>3} writer(s): {t.per_second:>9,.0f} appends/s   "
                    f"latency p50 {pct(t.latencies_us, 0.5) / 1000:6.2f} ms  "
                    f"p99 {pct(t.latencies_us, 0.99) / 1000:6.2f} ms   "
                    f"mean batch {t.mean_batch:6.1f}   ({t.appends:,} in {t.seconds:.1f} s)",
                    flush=True,
                )
            if args.entries:
                print(f"  growing the log to {args.entries:,} entries ({BUILD_BATCH:,} per transaction) ...")
                added, took = grow_log(kernel, args.entries)
                result["build"] = (added, took)
                print(f"  built: {added:,} appends in {took:.1f} s ({added / took if took else 0:,.0f}/s)")
                p = measure_proofs(kernel, args.samples)
                result["proofs"] = p
                for name, values, length in (
                    ("inclusion", p.inclusion_us, p.inclusion_len),
                    ("consistency", p.consistency_us, p.consistency_len),
                ):
                    print(
                        f"  {name:>11} proof at {p.size:,}: p50 {pct(values, 0.5):7.0f} µs   "
                        f"p99 {pct(values, 0.99):7.0f} µs   mean {statistics.fmean(values):7.0f} µs   "
                        f"({len(values):,} proofs, {length:.1f} hashes each)",
                        flush=True,
                    )
        finally:
            kernel.close()
        return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="sqlite:///PATH (a fresh file in PATH's folder) or postgresql://...")
    parser.add_argument("--postgres", metavar="URL", help="also run on a fresh database on this PostgreSQL server")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per writer count (default 5)")
    parser.add_argument(
        "--writers",
        type=lambda s: [int(x) for x in s.split(",") if x],
        default=[1, 8, 64],
        help="comma-separated concurrent writer threads (default 1,8,64)",
    )
    parser.add_argument("--entries", type=int, default=1_000_000, help="log size for the proofs (0: skip)")
    parser.add_argument("--samples", type=int, default=2000, help="proofs timed of each kind (default 2000)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of 20,000 appends first")
    args = parser.parse_args(argv)
    if args.entries and args.entries < 2:
        parser.error("--entries must be 0 or at least 2")
    return args


def repeat_command(args: argparse.Namespace) -> str:
    cmd = [".venv/bin/python", "bench/ledger.py"]
    if args.database_url:
        cmd += ["--database-url", args.database_url]
    if args.postgres:
        cmd += ["--postgres", args.postgres]
    cmd += ["--seconds", f"{args.seconds:g}", "--writers", ",".join(map(str, args.writers))]
    cmd += ["--entries", str(args.entries), "--samples", str(args.samples)]
    return shlex.join(cmd)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    print(f"Qorgau ledger benchmark, {time.strftime('%Y-%m-%d %H:%M %Z')}")
    print(f"machine: {machine()}")
    started = time.perf_counter()
    results = [run_one(args.database_url, args)]
    if args.postgres:
        results.append(run_one(args.postgres, args))
    print("\nsummary (appends/s by concurrent writers; proof latency p50/p99 in µs)")
    for r in results:
        line = "  " + r["label"].split(" (")[0] + ": "
        line += ", ".join(f"{t.writers}w {t.per_second:,.0f}/s" for t in r["throughput"])
        p = r["proofs"]
        if p is not None:
            line += (
                f"; inclusion {pct(p.inclusion_us, 0.5):.0f}/{pct(p.inclusion_us, 0.99):.0f}, "
                f"consistency {pct(p.consistency_us, 0.5):.0f}/{pct(p.consistency_us, 0.99):.0f} "
                f"at {p.size:,}"
            )
            added, took = r["build"]
            line += f" (built {added:,} in {took:.0f} s)"
        print(line)
    print(f"total {time.perf_counter() - started:.0f} s")
    print(f"repeat: {repeat_command(args)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
