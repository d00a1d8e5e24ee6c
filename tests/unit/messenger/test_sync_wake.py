"""/sync waiters are woken one per event-loop turn, so other ready work (a send's acknowledgement) can
run between their answers; none is skipped and the order is kept."""

from __future__ import annotations

import asyncio

from qorgau.messenger.sync import _Waiter, _wake_in_turn


async def test_waiters_wake_one_per_turn_with_other_work_in_between() -> None:
    loop = asyncio.get_running_loop()
    order: list[str] = []
    waiters = [_Waiter(loop.create_future(), ["!r:x"], f"a{i}") for i in range(4)]

    async def answer(waiter: _Waiter) -> None:
        await waiter.future
        order.append(waiter.account_id)

    tasks = [asyncio.create_task(answer(w)) for w in waiters]
    await asyncio.sleep(0)  # every task is waiting on its future
    _wake_in_turn(waiters)
    assert [w.future.done() for w in waiters] == [True, False, False, False]
    loop.call_soon(order.append, "ack")  # ready now: it must not wait for all four answers
    await asyncio.gather(*tasks)
    assert order.index("ack") < order.index("a3")
    assert [x for x in order if x != "ack"] == ["a0", "a1", "a2", "a3"]


async def test_a_waiter_already_done_is_passed_over() -> None:
    loop = asyncio.get_running_loop()
    waiters = [_Waiter(loop.create_future(), [], f"a{i}") for i in range(3)]
    waiters[1].future.cancel()  # timed out before the wake-up reached it
    _wake_in_turn(waiters)
    for _ in range(3):
        await asyncio.sleep(0)
    assert waiters[0].future.done() and waiters[2].future.result() is None
