"""Which web3 provider serves a chain: HTTP(S) JSON-RPC by URL, or one registered in-process.

`register_provider("tester://main", w3)` lets tests (and the embedded demo) serve a chain
from an in-process EVM (`EthereumTesterProvider`); production chains use their URL.
Clients are per thread: HTTP sessions are not shared across the scheduler's threads.
The registrations, the clients and the chain ids checked are runtime state (slots of
`realtime_project.runtime`), not configuration: a fresh runtime starts with none.
"""

from __future__ import annotations

import threading

import requests
from web3 import HTTPProvider, Web3
from web3.middleware import ExtraDataToPOAMiddleware

from realtime_project.runtime import Slot

from .conf import wallets_settings
from .rpc import ChainClient, RpcError

#: Chains whose blocks carry longer extraData (clique/parlia PoA): BSC, Polygon PoS.
POA_CHAINS = frozenset({56, 97, 137, 80002})

#: In-process providers by RPC URL.
_REGISTERED: Slot[dict[str, Web3]] = Slot("wallets.registered_providers", dict)
#: HTTP clients by RPC URL, each thread its own (`web3s` of the thread-local).
_CLIENTS: Slot[threading.local] = Slot("wallets.provider_clients", threading.local)
#: (rpc_url, chain_id) pairs whose node answered eth_chainId correctly (checked once).
_VERIFIED: Slot[set[tuple[str, int]]] = Slot("wallets.verified_chain_ids", set)


class UnsupportedRpcUrl(RpcError):
    code = "unsupported_rpc_url"


def register_provider(rpc_url: str, w3: Web3) -> None:
    """Serve `rpc_url` from `w3` in this process (in-process EVMs)."""
    _REGISTERED.get()[rpc_url] = w3
    _clients().pop(rpc_url, None)
    verified = _VERIFIED.get()
    verified.difference_update({key for key in verified if key[0] == rpc_url})


def unregister_provider(rpc_url: str) -> None:
    _REGISTERED.get().pop(rpc_url, None)
    _clients().pop(rpc_url, None)


def _clients() -> dict[str, Web3]:
    local = _CLIENTS.get()
    cache: dict[str, Web3] | None = getattr(local, "web3s", None)
    if cache is None:
        cache = local.web3s = {}
    return cache


def web3_for(rpc_url: str, chain_id: int) -> Web3:
    registered = _REGISTERED.get()
    if rpc_url in registered:
        return registered[rpc_url]
    cache = _clients()
    w3 = cache.get(rpc_url)
    if w3 is None:
        if not rpc_url.startswith(("http://", "https://")):
            raise UnsupportedRpcUrl(f"unsupported RPC URL scheme: {rpc_url.split(':', 1)[0]!r} (use http or https)")
        timeout = wallets_settings().rpc_timeout
        # No provider-level retries: a timeout must surface now, the next beat retries.
        # trust_env off: requests otherwise re-reads proxy variables on every call (~1 ms).
        session = requests.Session()
        session.trust_env = False
        provider = HTTPProvider(
            rpc_url, request_kwargs={"timeout": timeout}, session=session, exception_retry_configuration=None
        )
        w3 = Web3(provider)
        # Read-only client: web3's default middleware validates each call by asking the
        # node for eth_chainId first (doubling the requests), resolves ENS names and wraps
        # results in AttributeDicts; we check the chain id once and read plain dicts.
        w3.middleware_onion.clear()
        if chain_id in POA_CHAINS:
            w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
        cache[rpc_url] = w3
    return w3


def client_for(rpc_url: str, chain_id: int) -> ChainClient:
    """A fresh client (own call counters) over the cached provider, its chain id checked once."""
    client = ChainClient(web3_for(rpc_url, chain_id), chain_id)
    verified = _VERIFIED.get()
    if (rpc_url, chain_id) not in verified:
        client.verify_chain()
        verified.add((rpc_url, chain_id))
    return client
