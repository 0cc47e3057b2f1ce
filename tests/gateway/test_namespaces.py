"""Namespace registry: lookup, key rules, normalisation, authorisation, resolve (own registry per test)."""

from __future__ import annotations

import re

import pytest

from realtime_project.gateway.errors import BadRequest, ErrorCode, Forbidden, NotFound, Unauthenticated
from realtime_project.gateway.layer_messages import channel_group
from realtime_project.gateway.namespaces import (
    ANONYMOUS,
    Namespace,
    NamespaceRegistry,
    Principal,
    Recovery,
    namespaces,
)
from realtime_project.gateway.protocol import ChannelName, parse_channel

SYMBOL = re.compile(r"^[A-Za-z0-9]{1,20}$")
ADDRESS = re.compile(r"^0[xX][0-9a-fA-F]{40}$")
ALICE = Principal(7)
STAFF = Principal(1, is_staff=True)


def _upper(key: str) -> str:
    if key == "BAD":
        raise ValueError("symbol not listed")
    if key == "SILENT":
        raise ValueError
    return key.upper()


@pytest.fixture
def registry() -> NamespaceRegistry:
    reg = NamespaceRegistry()
    reg.register(Namespace("prices", public=True, key_pattern=SYMBOL, key_required=False, normalise_key=_upper))
    reg.register(Namespace("market", public=True, key_pattern=re.compile(r"^overview$")))
    reg.register(Namespace("notifications", recovery=Recovery.DURABLE, key_pattern=None))
    reg.register(Namespace("wallet", recovery=Recovery.DURABLE, key_pattern=ADDRESS, normalise_key=str.lower))
    return reg


def ch(text: str) -> ChannelName:
    return parse_channel(text)


class TestRegistry:
    def test_register_returns_and_replaces(self, registry: NamespaceRegistry) -> None:
        replacement = Namespace("market", public=False, key_pattern=re.compile(r"^x$"))
        assert registry.register(replacement) is replacement
        assert registry.get("market") is replacement
        assert registry.names() == ["market", "notifications", "prices", "wallet"]

    def test_get_unknown(self, registry: NamespaceRegistry) -> None:
        assert registry.get("nope") is None

    def test_for_internal(self, registry: NamespaceRegistry) -> None:
        assert registry.for_internal("notifications:42") is registry.get("notifications")
        assert registry.for_internal("prices") is registry.get("prices")
        assert registry.for_internal("nope:1") is None

    def test_defaults(self) -> None:
        ns = Namespace("x")
        assert (ns.public, ns.recovery, ns.key_pattern, ns.key_required, ns.history_size, ns.history_ttl) == (
            False,
            Recovery.SNAPSHOT,
            None,
            True,
            100,
            3600.0,
        )

    def test_the_process_registry_is_a_registry(self) -> None:
        assert isinstance(namespaces, NamespaceRegistry)


class TestLookup:
    def test_unknown_namespace_is_not_found(self, registry: NamespaceRegistry) -> None:
        with pytest.raises(NotFound) as exc:
            registry.lookup(ch("nope:1"))
        assert exc.value.code is ErrorCode.NOT_FOUND
        assert exc.value.details == {"namespace": "nope"}

    def test_key_required(self, registry: NamespaceRegistry) -> None:
        with pytest.raises(BadRequest) as exc:
            registry.lookup(ch("market"))
        assert exc.value.message == "channel needs a key: market:<key>"

    def test_key_optional(self, registry: NamespaceRegistry) -> None:
        assert registry.lookup(ch("prices")).name == "prices"
        assert registry.lookup(ch("prices:BTC")).name == "prices"

    def test_key_forbidden(self, registry: NamespaceRegistry) -> None:
        with pytest.raises(BadRequest) as exc:
            registry.lookup(ch("notifications:42"))
        assert exc.value.message == "channel notifications takes no key"
        assert registry.lookup(ch("notifications")).name == "notifications"

    @pytest.mark.parametrize(
        "text",
        ["prices:" + "A" * 21, "prices:BT.C", "prices:BT-C", "market:other", "market:overviews", "wallet:0x123"],
    )
    def test_key_pattern_mismatch(self, registry: NamespaceRegistry, text: str) -> None:
        with pytest.raises(BadRequest) as exc:
            registry.lookup(ch(text))
        assert exc.value.message == "malformed channel key"
        assert exc.value.details == {"channel": text}

    def test_key_pattern_match(self, registry: NamespaceRegistry) -> None:
        assert registry.lookup(ch("wallet:0x" + "aB" * 20)).name == "wallet"
        assert registry.lookup(ch("market:overview")).name == "market"


class TestNormalise:
    def test_normalise_key(self, registry: NamespaceRegistry) -> None:
        assert registry.normalise(ch("prices:btc")) == ChannelName("prices", "BTC")

    def test_without_key_or_normaliser(self, registry: NamespaceRegistry) -> None:
        assert registry.normalise(ch("prices")) == ChannelName("prices", None)
        assert registry.normalise(ch("market:overview")) == ChannelName("market", "overview")

    def test_value_error_is_bad_request(self, registry: NamespaceRegistry) -> None:
        with pytest.raises(BadRequest) as exc:
            registry.normalise(ch("prices:BAD"))
        assert exc.value.code is ErrorCode.BAD_REQUEST

    def test_value_error_without_text(self, registry: NamespaceRegistry) -> None:
        with pytest.raises(BadRequest) as exc:
            registry.normalise(ch("prices:SILENT"))
        assert exc.value.message == "malformed channel key"

    def test_value_error_text_is_the_client_message(self, registry: NamespaceRegistry) -> None:
        # The contract apps rely on (wallets' checksum explains a bad EIP-55 key): the text of a
        # ValueError from normalise_key is written for clients and becomes the error message.
        with pytest.raises(BadRequest) as exc:
            registry.normalise(ch("prices:BAD"))
        assert exc.value.message == "symbol not listed"
        assert exc.value.details is None

    def test_other_exceptions_propagate(self) -> None:
        def broken(key: str) -> str:
            raise KeyError(key)

        reg = NamespaceRegistry()
        reg.register(Namespace("x", public=True, key_pattern=SYMBOL, normalise_key=broken))
        with pytest.raises(KeyError):
            reg.normalise(ch("x:a"))

    def test_unknown_namespace(self, registry: NamespaceRegistry) -> None:
        with pytest.raises(NotFound):
            registry.normalise(ch("nope"))


class TestAuthorise:
    async def test_public_for_anonymous(self, registry: NamespaceRegistry) -> None:
        ns, internal = await registry.authorise(ANONYMOUS, ch("prices:eth"))
        assert ns.name == "prices" and internal == ChannelName("prices", "ETH")

    async def test_private_needs_a_user(self, registry: NamespaceRegistry) -> None:
        with pytest.raises(Unauthenticated) as exc:
            await registry.authorise(ANONYMOUS, ch("notifications"))
        assert exc.value.code is ErrorCode.UNAUTHENTICATED
        ns, internal = await registry.authorise(ALICE, ch("notifications"))
        assert ns.name == "notifications" and internal == ChannelName("notifications", None)

    async def test_lookup_errors_come_before_authentication(self, registry: NamespaceRegistry) -> None:
        with pytest.raises(NotFound):
            await registry.authorise(ANONYMOUS, ch("nope"))
        with pytest.raises(BadRequest):
            await registry.authorise(ANONYMOUS, ch("wallet:0x1"))
        with pytest.raises(BadRequest):
            await registry.authorise(ANONYMOUS, ch("notifications:1"))

    async def test_authenticated_is_checked_before_the_authoriser(self) -> None:
        calls: list[Principal] = []

        def authorise(principal: Principal, channel: ChannelName) -> bool:
            calls.append(principal)
            return True

        reg = NamespaceRegistry()
        reg.register(Namespace("w", key_pattern=SYMBOL, authorise=authorise))
        with pytest.raises(Unauthenticated):
            await reg.authorise(ANONYMOUS, ch("w:a"))
        assert calls == []

    @pytest.mark.parametrize("asynchronous", [False, True])
    async def test_authoriser_forbids(self, asynchronous: bool) -> None:
        seen: list[tuple[Principal, ChannelName]] = []
        owned = {7: "0x" + "ab" * 20}

        def sync_check(principal: Principal, channel: ChannelName) -> bool:
            seen.append((principal, channel))
            return owned.get(principal.user_id or -1) == channel.key

        async def async_check(principal: Principal, channel: ChannelName) -> bool:
            return sync_check(principal, channel)

        reg = NamespaceRegistry()
        reg.register(
            Namespace(
                "wallet",
                key_pattern=ADDRESS,
                normalise_key=str.lower,
                authorise=async_check if asynchronous else sync_check,
            )
        )
        mine = "wallet:0x" + "AB" * 20
        _, internal = await reg.authorise(ALICE, ch(mine))
        # The authoriser sees the normalised channel.
        assert seen[-1] == (ALICE, ChannelName("wallet", "0x" + "ab" * 20)) and internal == seen[-1][1]
        with pytest.raises(Forbidden) as exc:
            await reg.authorise(ALICE, ch("wallet:0x" + "cd" * 20))
        assert exc.value.code is ErrorCode.FORBIDDEN
        assert exc.value.details == {"channel": "wallet:0x" + "cd" * 20}
        with pytest.raises(Forbidden):
            await reg.authorise(STAFF, ch(mine))

    @pytest.mark.parametrize("falsy", [False, None, 0, ""])
    async def test_falsy_authoriser_result_forbids(self, falsy: object) -> None:
        reg = NamespaceRegistry()
        reg.register(Namespace("x", public=True, authorise=lambda p, c: falsy))  # type: ignore[arg-type,return-value]
        with pytest.raises(Forbidden):
            await reg.authorise(ANONYMOUS, ch("x"))

    async def test_public_namespace_authoriser_applies_to_anonymous(self) -> None:
        reg = NamespaceRegistry()
        reg.register(Namespace("x", public=True, authorise=lambda p, c: p.authenticated))
        with pytest.raises(Forbidden):
            await reg.authorise(ANONYMOUS, ch("x"))
        await reg.authorise(ALICE, ch("x"))

    async def test_authoriser_exception_propagates(self) -> None:
        async def boom(principal: Principal, channel: ChannelName) -> bool:
            raise RuntimeError("db down")

        reg = NamespaceRegistry()
        reg.register(Namespace("x", authorise=boom))
        with pytest.raises(RuntimeError):
            await reg.authorise(ALICE, ch("x"))

    async def test_resolve_maps_to_the_internal_channel(self) -> None:
        reg = NamespaceRegistry()
        reg.register(
            Namespace(
                "notifications",
                key_pattern=None,
                resolve=lambda p, c: ChannelName(c.namespace, str(p.user_id)),
            )
        )
        _, internal = await reg.authorise(ALICE, ch("notifications"))
        assert internal == ChannelName("notifications", "7")
        assert channel_group(internal.name) == "rt.notifications.7"
        _, other = await reg.authorise(STAFF, ch("notifications"))
        assert other == ChannelName("notifications", "1")

    async def test_resolve_receives_the_normalised_channel(self) -> None:
        seen: list[ChannelName] = []

        def resolve(principal: Principal, channel: ChannelName) -> ChannelName:
            seen.append(channel)
            return channel

        reg = NamespaceRegistry()
        reg.register(Namespace("p", public=True, key_pattern=SYMBOL, normalise_key=str.upper, resolve=resolve))
        await reg.authorise(ANONYMOUS, ch("p:abc"))
        assert seen == [ChannelName("p", "ABC")]


def test_principal() -> None:
    assert not ANONYMOUS.authenticated and ANONYMOUS.user_id is None
    assert Principal(0).authenticated  # user id 0 is still a user
    assert Principal(3) == Principal(3, is_staff=False)
