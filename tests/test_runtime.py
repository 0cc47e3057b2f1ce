"""The process's runtime object: slots per process and per event loop, torn down as one."""

from __future__ import annotations

import asyncio

import pytest

from realtime_project import runtime
from realtime_project.runtime import Slot
from tests.support.fork import in_forked_child


class Thing:
    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


PROCESS_THING: Slot[Thing] = Slot("test.thing", Thing, close=Thing.close)
LOOP_THING: Slot[Thing] = Slot("test.loop_thing", Thing, per_loop=True, close=Thing.close)


def test_a_slot_is_made_once_per_process_and_closed_with_the_runtime() -> None:
    assert PROCESS_THING.peek() is None
    thing = PROCESS_THING.get()
    assert PROCESS_THING.get() is thing and PROCESS_THING.peek() is thing
    runtime.reset()
    assert thing.closed
    assert PROCESS_THING.get() is not thing


def test_a_per_loop_slot_is_made_once_per_loop_and_never_outlives_its_loop() -> None:
    async def get() -> Thing:
        return LOOP_THING.get()

    async def twice() -> tuple[Thing, Thing]:
        return LOOP_THING.get(), await asyncio.create_task(get())

    first, again = asyncio.run(twice())
    assert first is again  # every task of one loop shares it
    seen = {id(first)}
    for _ in range(5):  # new loops, possibly at a freed loop's address: never a closed loop's value
        thing = asyncio.run(get())
        assert thing is not first and id(thing) not in seen
        seen.add(id(thing))
    assert LOOP_THING.peek() is None  # outside any loop


def test_values_lists_every_loop_s_value() -> None:
    async def get() -> Thing:
        return LOOP_THING.get()

    loops = [asyncio.new_event_loop() for _ in range(2)]
    try:
        things = [loop.run_until_complete(get()) for loop in loops]
        assert sorted(map(id, runtime.current().values(LOOP_THING))) == sorted(map(id, things))
        runtime.reset()
        assert all(thing.closed for thing in things)
        assert runtime.current().values(LOOP_THING) == []
    finally:
        for loop in loops:
            loop.close()


@pytest.mark.filterwarnings("ignore:This process .* fork:DeprecationWarning")
def test_a_forked_child_starts_with_a_fresh_runtime() -> None:
    thing = PROCESS_THING.get()
    # The child forgets the parent's runtime; it does not close it.
    assert in_forked_child(lambda: PROCESS_THING.get() is not thing and not thing.closed)
