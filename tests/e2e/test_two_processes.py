"""Two app processes on one PostgreSQL and one Redis: an event written through one wakes a waiter on the other."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REDIS_URL, _truncate_pg, require_service
from tests.live import free_port

QORGAU = str(Path(sys.executable).with_name("qorgau"))


def _wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")


@pytest.fixture
def cluster(pg_database: str, tmp_path: Path) -> Iterator[dict[str, Any]]:
    redis_url = require_service("redis", REDIS_URL)
    _truncate_pg(pg_database)
    data_dir = tmp_path / "shared"
    env = {**os.environ, "QORGAU_LOG_LEVEL": "warning"}
    common = ["--data-dir", str(data_dir), "--database-url", pg_database]
    demo = subprocess.run([QORGAU, "demo", *common], capture_output=True, env=env, timeout=120, check=False)
    assert demo.returncode == 0, demo.stderr.decode()
    procs = []
    urls = []
    try:
        for _ in range(2):
            port = free_port()
            proc = subprocess.Popen(
                [QORGAU, "serve", *common, "--port", str(port), "--bus", redis_url, "--no-migrate"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            procs.append(proc)
            urls.append(f"http://127.0.0.1:{port}")
        for url, proc in zip(urls, procs, strict=True):
            _wait_ready(url, proc)
        yield {"urls": urls, "data_dir": data_dir, "database_url": pg_database}
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


@pytest.mark.postgres
@pytest.mark.redis
def test_event_through_one_process_wakes_a_long_poll_on_the_other(cluster: dict[str, Any]) -> None:
    from qorgau.demo import demo_password
    from qorgau.kernel.context import build_kernel
    from qorgau.settings import load_settings

    settings = load_settings(env={}, data_dir=cluster["data_dir"], database_url=cluster["database_url"])
    kernel = build_kernel(settings, start_writer=False)
    password = demo_password(kernel, "admin")
    kernel.close()
    a, b = cluster["urls"]
    with httpx.Client(base_url=a) as ca:
        login = ca.get("/login")
        csrf = login.text.split('name="_csrf" value="')[1].split('"')[0]
        ca.post("/login", data={"login": "admin", "password": password, "_csrf": csrf, "next": "/"})
        page = ca.get("/account").text
        csrf = page.split('name="_csrf" value="')[1].split('"')[0]
        token = ca.post("/api/v1/auth/tokens", json={"name": "e2e"}, headers={"X-CSRF-Token": csrf}).json()["token"]
    auth = {"Authorization": f"Bearer {token}"}
    latest = httpx.get(b + "/api/v1/admin/events?after=0&limit=1000", headers=auth).json()["next"]

    result: dict[str, Any] = {}

    def long_poll() -> None:
        started = time.monotonic()
        r = httpx.get(b + f"/api/v1/admin/events?after={latest}&timeout=20", headers=auth, timeout=30)
        result["elapsed"] = time.monotonic() - started
        result["body"] = r.json()

    waiter = threading.Thread(target=long_poll)
    waiter.start()
    time.sleep(0.5)  # the waiter is parked on process B
    sent = time.monotonic()
    created = httpx.post(
        a + "/api/v1/users",
        json={"username": "via.process.a", "password": "a-long-password", "role": "guard"},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    waiter.join(timeout=30)
    woke_after = result["elapsed"] - (sent - (time.monotonic() - result["elapsed"]))
    topics = [e["topic"] for e in result["body"]["events"]]
    assert "account.created" in topics
    # Woken by the bus, not by the 20 s timeout.
    assert result["elapsed"] < 10, result
    assert woke_after < 10


def test_workers_without_a_shared_bus_are_refused(tmp_path: Path) -> None:
    proc = subprocess.run(
        [QORGAU, "serve", "--data-dir", str(tmp_path), "--workers", "2"], capture_output=True, timeout=60, check=False
    )
    assert proc.returncode != 0
    assert "shared bus" in (proc.stdout + proc.stderr).decode()


@pytest.mark.redis
def test_workers_share_one_port_and_every_setting(tmp_path: Path) -> None:
    redis_url = require_service("redis", REDIS_URL)
    port = free_port()
    data_dir = tmp_path / "w"
    env = {**os.environ, "QORGAU_LOG_LEVEL": "warning", "QORGAU_LEDGER_ORIGIN": "ledger.workers.test.kz"}
    proc = subprocess.Popen(
        [QORGAU, "serve", "--data-dir", str(data_dir), "--port", str(port), "--workers", "2", "--bus", redis_url],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc)
        with httpx.Client(base_url=url) as c:
            checkpoints = {c.get("/api/v1/ledger/checkpoint").text.splitlines()[0] for _ in range(20)}
        # A setting given to the parent reaches every worker.
        assert checkpoints == {"ledger.workers.test.kz"}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
