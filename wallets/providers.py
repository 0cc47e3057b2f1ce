"""Which web3 provider serves a chain: HTTP(S) JSON-RPC by URL, or one registered in-process.

`register_provider("tester://main", w3)` lets tests (and the embedded demo) serve a chain
from an in-process EVM (`EthereumTesterProvider`); production chains use their URL.
Clients are per thread: HTTP sessions are not shared across the scheduler's threads.
"""

from __future__ import annotations

import threading

import requests
from web3 import HTTPProvider, Web3
from web3.middleware import ExtraDataToPOAMiddleware

from .conf import wallets_settings
from .rpc import ChainClient, RpcError

#: Chains whose blocks carry longer extraData (clique/parlia PoA): BSC, Polygon PoS.
POA_CHAINS = frozenset({56, 97, 137, 80002})

_registered: dict[str, Web3] = {}
_local = threading.local()
#: (rpc_url, chain_id) pairs whose node answered eth_chainId correctly (checked once).
_verified: set[tuple[str, int]] = set()


class UnsupportedRpcUrl(RpcError):
    code = "unsupported_rpc_url"


def register_provider(rpc_url: str, w3: Web3) -> None:
    """Serve `rpc_url` from `w3` in this process (in-process EVMs)."""
    _registered[rpc_url] = w3
    _clients().pop(rpc_url, None)
    _verified.difference_update({key for key in _verified if key[0] == rpc_url})


def unregister_provider(rpc_url: str) -> None:
    _registered.pop(rpc_url, None)
    _clients().pop(rpc_url, None)


def _clients() -> dict[str, Web3]:
    cache: dict[str, Web3] | None = getattr(_local, "web3s", None)
    if cache is None:
        cache = _local.web3s = {}
    return cache


def web3_for(rpc_url: str, chain_id: int) -> Web3:
    if rpc_url in _registered:
        return _registered[rpc_url]
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
    if (rpc_url, chain_id) not in _verified:
        client.verify_chain()
        _verified.add((rpc_url, chain_id))
    return client
