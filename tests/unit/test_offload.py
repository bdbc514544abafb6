"""Large inputs are worked on in worker threads, a bounded number at once
(hub/pipeline/offload.py)."""

from __future__ import annotations

import asyncio
import threading

from hub.pipeline.offload import Offload


async def test_small_inputs_stay_on_the_loop_large_ones_go_to_a_thread() -> None:
    offload = Offload(threshold_bytes=1000, max_threads=2)
    here = threading.get_ident()
    assert await offload.run(999, threading.get_ident) == here
    assert await offload.run(1000, threading.get_ident) != here


async def test_at_most_max_threads_at_once_and_the_loop_runs_meanwhile() -> None:
    offload = Offload(threshold_bytes=0, max_threads=2)
    lock, running, most = threading.Lock(), [0], [0]
    release = threading.Event()

    def work() -> int:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        release.wait(30)  # blocks its thread until the loop (still running) says so
        with lock:
            running[0] -= 1
        return 1

    jobs = asyncio.gather(*(offload.run(10, work) for _ in range(6)))
    for _ in range(500):  # the loop is free while the workers block
        if most[0] == 2:
            break
        await asyncio.sleep(0.01)
    assert most[0] == 2
    release.set()
    assert await jobs == [1] * 6
    assert most[0] == 2
