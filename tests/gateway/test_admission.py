"""Connection counting of the admission middleware (pure; the black-box limits are in
tests/security/test_limits.py)."""

from __future__ import annotations

from realtime_project.gateway.admission import GATEWAY_FULL, PER_ADDRESS, ConnectionCounter, client_address


def test_per_address_limit_then_release() -> None:
    c = ConnectionCounter()
    assert [c.admit("10.0.0.1", per_address=2, total=10) for _ in range(3)] == [None, None, PER_ADDRESS]
    assert c.admit("10.0.0.2", per_address=2, total=10) is None
    assert (c.total, c.by_address) == (3, {"10.0.0.1": 2, "10.0.0.2": 1})
    c.release("10.0.0.1")
    assert c.admit("10.0.0.1", per_address=2, total=10) is None
    for _ in range(2):
        c.release("10.0.0.1")
    c.release("10.0.0.2")
    assert (c.total, c.by_address) == (0, {})  # nothing left behind per address


def test_total_limit_counts_connections_without_an_address() -> None:
    c = ConnectionCounter()
    assert c.admit(None, per_address=1, total=2) is None
    assert c.admit(None, per_address=1, total=2) is None  # no address: only the total applies
    assert c.admit("10.0.0.1", per_address=1, total=2) == GATEWAY_FULL
    assert c.by_address == {}  # a refusal counts nothing
    c.release(None)
    assert c.admit("10.0.0.1", per_address=1, total=2) is None


def test_zero_is_no_limit() -> None:
    c = ConnectionCounter()
    assert all(c.admit("10.0.0.1", per_address=0, total=0) is None for _ in range(1000))


def test_client_address() -> None:
    assert client_address({"client": ("203.0.113.9", 5555)}) == "203.0.113.9"
    assert client_address({"client": None}) is None
    assert client_address({}) is None
