"""JSON-RPC access to one chain through web3.py, with errors mapped to codes and calls counted.

Every result is normalised into `chaindata` records (lowercase hex strings), so the
rest of the app never sees HexBytes (whose `.hex()` lost its 0x prefix in web3 8) or
provider-specific shapes. Errors become `RpcError` subclasses with a stable `code`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, cast

import requests
from eth_typing import HexStr
from web3 import Web3
from web3.exceptions import (
    BlockNotFound,
    ContractLogicError,
    RequestTimedOut,
    TimeExhausted,
    TooManyRequests,
    TransactionNotFound,
    Web3RPCError,
)
from web3.types import BlockParams, FilterParams, RPCEndpoint, RPCResponse, TxParams

from .chaindata import Block, Log, Receipt, Tx
from .traces import InternalTransfer, says_unsupported
from .traces import params as trace_params
from .traces import parse as parse_traces

T = TypeVar("T")
#: A block by number or by tag: the part of web3's `BlockIdentifier` this client sends.
BlockRef = int | BlockParams

#: Provider error texts that mean "narrow the eth_getLogs range" (Alchemy, Infura,
#: QuickNode, geth, anvil word it differently; -32005 is the EIP-1474 "limit exceeded").
_RANGE_HINTS = ("range", "too many", "limit exceeded", "exceed", "10000 results", "block range", "response size")


class RpcError(Exception):
    """The node answered with an error (or not at all)."""

    code = "rpc_error"

    def __init__(self, message: str, *, method: str = "") -> None:
        super().__init__(message)
        self.method = method


class RpcTimeout(RpcError):
    code = "rpc_timeout"


class RpcUnavailable(RpcError):
    code = "rpc_unavailable"


class RangeTooLarge(RpcError):
    code = "range_too_large"


class TracesUnsupported(RpcError):
    """The node has no call-trace method (or not this one)."""

    code = "traces_unsupported"


class ChainMismatch(RpcError):
    code = "chain_id_mismatch"


class Reverted(RpcError):
    """An eth_call reverted; `reason` is the decoded revert string when there is one."""

    code = "reverted"

    def __init__(self, reason: str, *, method: str = "") -> None:
        super().__init__(reason, method=method)
        self.reason = reason


def hexstr(value: Any) -> str:
    """0x-prefixed lowercase hex of bytes/HexBytes/str (web3 8: never `HexBytes.hex()`)."""
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return str(Web3.to_hex(value))


def _int(value: Any) -> int:
    """JSON-RPC quantities are hex strings; in-process providers give ints."""
    return value if isinstance(value, int) else int(value, 16)


def _lower(address: Any) -> str | None:
    return None if address is None else str(address).lower()


class ChainClient:
    """RPC calls for one chain; counts calls and the time spent waiting on the node."""

    def __init__(self, w3: Web3, chain_id: int | None = None) -> None:
        self.w3 = w3
        self.chain_id = chain_id
        #: JSON-RPC calls by method, and HTTP round trips (a batch is one request).
        self.calls: Counter[str] = Counter()
        self.requests = 0
        self.rpc_seconds = 0.0
        self._verified = chain_id is None
        # Over HTTP, blocks and logs are read as raw JSON (hex strings): web3's result
        # formatters turn every hex string into HexBytes/ints/checksummed addresses, which
        # we would only turn back, at ~15 µs per field (measured in bench/wallets_scan.py).
        from web3.providers.eth_tester import EthereumTesterProvider

        self.raw = not isinstance(w3.provider, EthereumTesterProvider)

    # --- plumbing -----------------------------------------------------------------------

    def _call(self, method: str, fn: Callable[[], T], count: int = 1) -> T:
        self.calls[method] += count
        self.requests += 1
        started = time.perf_counter()
        try:
            return fn()
        except (BlockNotFound, TransactionNotFound, ContractLogicError):
            raise
        except (requests.Timeout, RequestTimedOut, TimeExhausted, TimeoutError) as exc:
            raise RpcTimeout(f"{method} timed out: {type(exc).__name__}", method=method) from exc
        except (requests.ConnectionError, ConnectionError, TooManyRequests) as exc:
            raise RpcUnavailable(
                f"{method}: node unreachable or rate limited: {type(exc).__name__}", method=method
            ) from exc
        except requests.HTTPError as exc:
            raise RpcUnavailable(
                f"{method}: HTTP {exc.response.status_code if exc.response else '?'}", method=method
            ) from exc
        except Web3RPCError as exc:
            text = str(exc)
            error = (exc.rpc_response or {}).get("error") if isinstance(exc.rpc_response, dict) else None
            code = error.get("code") if isinstance(error, dict) else None
            if method == "eth_getLogs" and (code == -32005 or any(h in text.lower() for h in _RANGE_HINTS)):
                raise RangeTooLarge(f"{method}: {text[:300]}", method=method) from exc
            raise RpcError(f"{method}: {text[:300]}", method=method) from exc
        except (ValueError, KeyError, TypeError) as exc:
            # Malformed replies (missing fields, bad hex) from a misbehaving node.
            raise RpcError(f"{method}: malformed reply: {type(exc).__name__}: {str(exc)[:200]}", method=method) from exc
        except Exception as exc:
            # In-process providers raise their own types (eth-tester's TransactionFailed).
            raise RpcError(f"{method}: {type(exc).__name__}: {str(exc)[:300]}", method=method) from exc
        finally:
            self.rpc_seconds += time.perf_counter() - started

    def _raw(self, method: str, params: list[Any]) -> Any:
        """One JSON-RPC request without web3's formatters; errors raised as web3 would."""
        response = self.w3.provider.make_request(RPCEndpoint(method), params)
        error = response.get("error")
        if error is not None:
            message = error.get("message", "") if isinstance(error, dict) else str(error)
            raise Web3RPCError(str(message), rpc_response=response)
        return response.get("result")

    def _batch(self, method: str, params: list[list[Any]]) -> list[Any]:
        """Many calls of one method in one JSON-RPC batch (one HTTP round trip).

        Returns each call's result, or a `Web3RPCError` in its place (callers decide).
        """
        if not params:
            return []

        def send() -> list[Any]:
            provider: Any = self.w3.provider
            replies = provider.make_batch_request([(method, p) for p in params])
            if not isinstance(replies, list):
                # The node refused the batch as a whole (an error object, not a list).
                error = replies.get("error") if isinstance(replies, dict) else replies
                # A dict here is the node's JSON-RPC error response itself.
                response = cast(RPCResponse, replies) if isinstance(replies, dict) else None
                raise Web3RPCError(str(error), rpc_response=response)
            # web3 returns the replies sorted by id, i.e. in request order.
            out: list[Any] = []
            for reply in replies:
                if "error" in reply:
                    err = reply.get("error") or {}
                    message = err.get("message", err) if isinstance(err, dict) else err
                    out.append(Web3RPCError(str(message), rpc_response=reply))
                else:
                    out.append(reply.get("result"))
            if len(out) != len(params):
                raise RpcError(f"{method}: batch answered {len(out)} of {len(params)} calls", method=method)
            return out

        return self._call(method, send, count=len(params))

    def verify_chain(self) -> None:
        """Refuse to scan a node that serves another chain than the one configured."""
        if self._verified:
            return
        actual = self._call("eth_chainId", lambda: int(self.w3.eth.chain_id))
        if actual != self.chain_id:
            raise ChainMismatch(f"node serves chain {actual}, configured {self.chain_id}", method="eth_chainId")
        self._verified = True

    # --- reads --------------------------------------------------------------------------

    def head(self) -> int:
        return self._call("eth_blockNumber", lambda: int(self.w3.eth.block_number))

    def block(self, number: BlockRef, *, full: bool = True) -> Block | None:
        """The block, or None if the node does not have it (yet, or any more)."""
        try:
            if self.raw:
                tag = number if isinstance(number, str) else hex(number)
                raw = self._call("eth_getBlockByNumber", lambda: self._raw("eth_getBlockByNumber", [tag, full]))
            else:
                raw = self._call("eth_getBlockByNumber", lambda: self.w3.eth.get_block(number, full_transactions=full))
        except BlockNotFound:
            return None
        if raw is None:
            return None
        return self._block(raw, full)

    def blocks(self, numbers: list[int]) -> list[Block | None]:
        """Several full blocks; over HTTP in one batch request. None where the node has none."""
        if not self.raw:
            return [self.block(n) for n in numbers]
        results = self._batch("eth_getBlockByNumber", [[hex(n), True] for n in numbers])
        out: list[Block | None] = []
        for result in results:
            if isinstance(result, Web3RPCError):
                raise RpcError(f"eth_getBlockByNumber: {str(result)[:300]}", method="eth_getBlockByNumber")
            out.append(None if result is None else self._block(result, True))
        return out

    def _block(self, raw: Any, full: bool) -> Block:
        try:
            txs: tuple[Tx, ...] = ()
            if full:
                txs = tuple(self._tx(t) for t in raw["transactions"])
            return Block(
                number=_int(raw["number"]),
                hash=hexstr(raw["hash"]),
                parent_hash=hexstr(raw["parentHash"]),
                timestamp=_int(raw["timestamp"]),
                transactions=txs,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise RpcError(f"eth_getBlockByNumber: malformed block: {exc}", method="eth_getBlockByNumber") from exc

    @staticmethod
    def _tx(t: Any) -> Tx:
        block_number = t.get("blockNumber")
        block_hash = t.get("blockHash")
        return Tx(
            hash=hexstr(t["hash"]),
            sender=str(t["from"]).lower(),
            to=_lower(t.get("to")),
            value=_int(t["value"]),
            nonce=_int(t["nonce"]),
            input=hexstr(t.get("input", b"")),
            gas=_int(t.get("gas", 0)),
            block_number=None if block_number is None else _int(block_number),
            block_hash=None if block_hash is None else hexstr(block_hash),
        )

    def logs(
        self,
        *,
        start: int,
        end: int,
        topics: Sequence[Any],
        address: Sequence[str] | None = None,
    ) -> list[Log]:
        params: FilterParams = {"fromBlock": start, "toBlock": end, "topics": list(topics)}
        if address:
            params["address"] = [Web3.to_checksum_address(a) for a in address]
        if self.raw:
            hex_params = {**params, "fromBlock": hex(start), "toBlock": hex(end)}
            raw = self._call("eth_getLogs", lambda: self._raw("eth_getLogs", [hex_params]))
            if not isinstance(raw, list):
                raise RpcError("eth_getLogs: malformed reply: not a list", method="eth_getLogs")
            try:
                return [_raw_log(item) for item in raw]
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise RpcError(f"eth_getLogs: malformed log: {type(exc).__name__}", method="eth_getLogs") from exc
        raw = self._call("eth_getLogs", lambda: self.w3.eth.get_logs(params))
        return [self._log(item) for item in raw]

    @staticmethod
    def _log(item: Any) -> Log:
        return Log(
            address=str(item["address"]).lower(),
            topics=tuple(t.lower() if isinstance(t, str) else hexstr(t) for t in item["topics"]),
            data=hexstr(item["data"]),
            block_number=_int(item["blockNumber"]),
            block_hash=hexstr(item["blockHash"]),
            tx_hash=hexstr(item["transactionHash"]),
            log_index=_int(item["logIndex"]),
            removed=bool(item.get("removed", False)),
        )

    def receipt(self, tx_hash: str) -> Receipt | None:
        try:
            raw = self._call("eth_getTransactionReceipt", lambda: self.w3.eth.get_transaction_receipt(HexStr(tx_hash)))
        except TransactionNotFound:
            return None
        return _receipt(raw)

    def receipts(self, hashes: Sequence[str]) -> dict[str, Receipt | None]:
        """Receipts of several transactions (over HTTP in one batch); None where not mined."""
        if not self.raw:
            return {h: self.receipt(h) for h in hashes}
        out: dict[str, Receipt | None] = {}
        for tx_hash, raw in zip(hashes, self._batch("eth_getTransactionReceipt", [[h] for h in hashes]), strict=True):
            if isinstance(raw, Web3RPCError):
                raise RpcError(f"eth_getTransactionReceipt: {str(raw)[:300]}", method="eth_getTransactionReceipt")
            try:
                out[tx_hash] = _receipt(raw)
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise RpcError(
                    f"eth_getTransactionReceipt: malformed receipt: {exc}", method="eth_getTransactionReceipt"
                ) from exc
        return out

    def transaction(self, tx_hash: str) -> Tx | None:
        try:
            raw = self._call("eth_getTransactionByHash", lambda: self.w3.eth.get_transaction(HexStr(tx_hash)))
        except TransactionNotFound:
            return None
        return None if raw is None else self._tx(raw)

    def balances(self, requests: list[tuple[str, str]], block: int) -> list[int | bytes | None]:
        """Native balances (token "") and `eth_call`s (token, data) at `block`, batched over HTTP.

        Each item: an int (native balance), the call's bytes, or None if the call reverted.
        """
        if not self.raw:
            out: list[int | bytes | None] = []
            for address, data in requests:
                if not data:
                    out.append(self.balance(address, block))
                    continue
                try:
                    out.append(self.call({"to": Web3.to_checksum_address(address), "data": data}, block))
                except Reverted:
                    out.append(None)
            return out
        tag = hex(block)
        natives = [i for i, (_, data) in enumerate(requests) if not data]
        calls = [i for i, (_, data) in enumerate(requests) if data]
        results: list[int | bytes | None] = [None] * len(requests)
        for i, value in zip(
            natives, self._batch("eth_getBalance", [[requests[i][0], tag] for i in natives]), strict=True
        ):
            if isinstance(value, Web3RPCError):
                raise RpcError(f"eth_getBalance: {str(value)[:300]}", method="eth_getBalance")
            results[i] = _int(value)
        params = [[{"to": requests[i][0], "data": requests[i][1]}, tag] for i in calls]
        for i, value in zip(calls, self._batch("eth_call", params), strict=True):
            if isinstance(value, Web3RPCError):
                if "revert" not in str(value).lower():
                    raise RpcError(f"eth_call: {str(value)[:300]}", method="eth_call")
                results[i] = None
            else:
                results[i] = bytes.fromhex(str(value)[2:])
        return results

    def traces(self, method: str, numbers: Sequence[int]) -> dict[int, list[InternalTransfer]]:
        """Internal transfers of blocks from a call-trace method (wallets/traces.py), one batch."""
        if not self.raw:
            raise TracesUnsupported(f"{method}: the in-process EVM has no call traces", method=method)
        out: dict[int, list[InternalTransfer]] = {}
        for number, result in zip(
            numbers, self._batch(method, [trace_params(method, n) for n in numbers]), strict=True
        ):
            if isinstance(result, Web3RPCError):
                error = result.rpc_response.get("error") if isinstance(result.rpc_response, dict) else None
                code = error.get("code") if isinstance(error, dict) else None
                if says_unsupported(str(result), code):
                    raise TracesUnsupported(f"{method}: {str(result)[:200]}", method=method)
                raise RpcError(f"{method}: {str(result)[:300]}", method=method)
            out[number] = parse_traces(method, result)
        return out

    def nonce(self, address: str, block: BlockRef = "latest") -> int:
        checksummed = Web3.to_checksum_address(address)
        return self._call("eth_getTransactionCount", lambda: int(self.w3.eth.get_transaction_count(checksummed, block)))

    def balance(self, address: str, block: BlockRef = "latest") -> int:
        checksummed = Web3.to_checksum_address(address)
        return self._call("eth_getBalance", lambda: int(self.w3.eth.get_balance(checksummed, block)))

    def call(self, tx: dict[str, Any], block: BlockRef = "latest") -> bytes:
        """eth_call; raises `Reverted` with the reason on a revert."""
        try:
            if self.raw:
                params = {k: (hex(v) if isinstance(v, int) else v) for k, v in tx.items()}
                tag = block if isinstance(block, str) else hex(block)
                result = self._call("eth_call", lambda: self._raw("eth_call", [params, tag]))
                return bytes.fromhex(str(result)[2:])
            # A call object as web3 takes it: `to`, `data` (hex strings) and the like.
            params_web3 = cast(TxParams, tx)
            return bytes(self._call("eth_call", lambda: self.w3.eth.call(params_web3, block)))
        except ContractLogicError as exc:
            raise Reverted(revert_reason(exc), method="eth_call") from exc
        except (RpcTimeout, RpcUnavailable):
            raise
        except RpcError as exc:
            text = str(exc.__cause__ or exc)
            if "revert" not in text.lower():
                raise
            raise Reverted(_strip_revert(text), method="eth_call") from exc


def _receipt(raw: Any) -> Receipt | None:
    if raw is None or raw.get("blockNumber") is None:
        return None
    return Receipt(
        tx_hash=hexstr(raw["transactionHash"]),
        status=_int(raw.get("status", 1)),
        block_number=_int(raw["blockNumber"]),
        block_hash=hexstr(raw["blockHash"]),
        sender=str(raw["from"]).lower(),
        to=_lower(raw.get("to")),
        gas_used=_int(raw.get("gasUsed", 0)),
    )


def _raw_log(item: dict[str, Any]) -> Log:
    """A log from raw JSON (hex strings): the hot path of a scan, so no generic helpers."""
    return Log(
        address=item["address"].lower(),
        topics=tuple([t.lower() for t in item["topics"]]),
        data=item["data"].lower(),
        block_number=int(item["blockNumber"], 16),
        block_hash=item["blockHash"].lower(),
        tx_hash=item["transactionHash"].lower(),
        log_index=int(item["logIndex"], 16),
        removed=item.get("removed") is True,
    )


def revert_reason(exc: ContractLogicError) -> str:
    return _strip_revert(str(exc.message if getattr(exc, "message", None) else exc))


def _strip_revert(text: str) -> str:
    for prefix in ("execution reverted: ", "execution reverted"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    text = text.strip()
    return "" if text in ("b''", "0x") else text[:300]
