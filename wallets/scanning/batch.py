"""One batch of consecutive blocks turned into activity rows, balance changes and frames.

Everything that needs the node (logs, receipts, token metadata, balances) happens here,
before the database transaction; `scanning.scanner` then writes the result atomically
with the cursor. Nothing is published from here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from ..addresses import checksum_lower
from ..balances import read_balances
from ..blocks import BlockListener, LogFilter
from ..chaindata import Block, Log, Tx
from ..conf import WalletsSettings
from ..logs import parse_logs
from ..models import Chain, SkippedLog
from ..payloads import ApprovalData, WalletUpdate, balance_update, event_update, internal_update, native_update
from ..selectors import known_spenders, stored_balances
from ..services.approvals import ApprovalChange, approval_events, classify_events, warning_data
from ..tokens import TokenInfo, token_infos
from .pending import Included


@dataclass
class BalanceChange:
    address: str  # lowercase
    token: str  # lowercase, "" native
    symbol: str
    decimals: int | None
    previous: int
    current: int
    block: int


class ActivityRow(NamedTuple):
    """One `WalletActivity` row as it is written: the natural key first, then the rest.

    A plain tuple, not a model instance: a batch builds thousands of them, and the
    instance and per-field ORM preparation cost more than the insert (docs/benchmarks/wallets.md).
    """

    address: str  # EIP-55
    kind: str
    block_hash: str
    tx_hash: str
    log_index: int  # -1 for native transfers and balance changes
    token: str  # EIP-55; "" for the native coin
    block_number: int
    timestamp: int  # block time, seconds since the epoch
    payload: WalletUpdate

    @property
    def key(self) -> tuple[str, str, str, str, int, str]:
        """The natural key without the chain (`WalletActivity`'s unique constraint)."""
        return (self.address, self.kind, self.block_hash, self.tx_hash, self.log_index, self.token)


@dataclass
class Batch:
    """What a batch of blocks adds; `blocks` may be shorter than asked (a fork mid-fetch)."""

    blocks: list[Block]
    rows: list[ActivityRow] = field(default_factory=list)
    skips: list[SkippedLog] = field(default_factory=list)
    balances: list[BalanceChange] = field(default_factory=list)
    #: (sender, nonce) -> hash of the mined transaction (to detect replaced watched ones).
    mined_nonces: dict[tuple[str, int], Tx] = field(default_factory=dict)
    #: Approvals given by watched owners, classified (see wallets/services/approvals.py).
    approvals: list[ApprovalChange] = field(default_factory=list)
    #: Transactions sent by tracked (proven) addresses, to track at inclusion.
    included: list[Included] = field(default_factory=list)

    @property
    def frames(self) -> list[WalletUpdate]:
        return [row.payload for row in self.rows]


def _ms(seconds: int) -> int:
    return int(seconds) * 1000


def trim_to_logs(blocks: list[Block], logs: list[Log]) -> tuple[list[Block], list[Log]]:
    """Drop blocks from the first one a log disagrees with (the chain moved between calls)."""
    hashes = {b.number: b.hash for b in blocks}
    cut: int | None = None
    for log in logs:
        if hashes.get(log.block_number) != log.block_hash:
            cut = log.block_number if cut is None else min(cut, log.block_number)
    if cut is None:
        return blocks, logs
    return [b for b in blocks if b.number < cut], [log for log in logs if log.block_number < cut]


def build_batch(
    *,
    chain: Chain,
    listener: BlockListener,
    blocks: list[Block],
    watched: set[str],
    head: int,
    conf: WalletsSettings,
    watched_nonces: set[tuple[str, int]],
    tracked: set[str] | None = None,
    history_balances_at: int | None = None,
    traces: str = "",
) -> Batch:
    """Fetch logs and balances for `blocks` and build the rows to write.

    `tracked` (proven addresses, a subset of `watched`): their transactions are tracked at
    inclusion by the transaction monitor (wallets/scanning/pending.py).
    `traces`: the node's call-trace method, to record internal transfers ("" = none).
    `history_balances_at` (a history backfill): no balance rows; the balances that
    approvals are judged against are read at that block (the link's) instead.
    """
    client = listener.client(chain)
    if not watched or not blocks:
        return Batch(blocks=blocks, mined_nonces=_mined(blocks, watched_nonces))
    start, end = blocks[0].number, blocks[-1].number
    narrow = len(watched) <= conf.address_filter_limit
    flt = LogFilter(addresses=tuple(sorted(watched)) if narrow else ())
    logs = listener.fetch_logs(chain, flt, start, end)
    blocks, logs = trim_to_logs(blocks, logs)
    batch = Batch(blocks=blocks, mined_nonces=_mined(blocks, watched_nonces))
    if not blocks:
        return batch
    end = blocks[-1].number
    by_number = {b.number: b for b in blocks}
    events, skips = parse_logs(logs, watched)
    infos: dict[str, TokenInfo] = token_infos(
        chain_pk=chain.pk, chain_id=chain.chain_id, client=client, tokens={e.token for e in events}
    )
    required = chain.required_confirmations
    touched: set[tuple[str, str]] = set()
    granted = approval_events(events)
    for event in granted:
        if event.standard == "erc20":
            touched.add((event.address, event.token))  # "above the balance" needs the balance
    approval_payloads: dict[tuple[str, str, int], ApprovalData] = {}
    for event in events:
        block = by_number[event.block_number]
        payload = event_update(
            event,
            chain_id=chain.chain_id,
            token=infos.get(event.token),
            head=head,
            required=required,
            timestamp_ms=_ms(block.timestamp),
        )
        batch.rows.append(
            ActivityRow(
                payload["address"],
                event.kind,
                event.block_hash,
                event.tx_hash,
                event.log_index,
                checksum_lower(event.token),
                event.block_number,
                block.timestamp,
                payload,
            )
        )
        if event.kind == "transaction":
            touched.add((event.address, event.token))
        elif event.kind == "approval":
            # event_update makes an `approval` event's data an ApprovalData.
            approval_payloads[(event.address, event.tx_hash, event.log_index)] = cast(ApprovalData, payload["data"])
    for skip in skips:
        batch.skips.append(
            SkippedLog(
                chain=chain,
                block_number=skip.log.block_number,
                block_hash=skip.log.block_hash,
                tx_hash=skip.log.tx_hash,
                log_index=skip.log.log_index,
                reason=skip.reason,
                detail=skip.detail[:1000],
            )
        )
    native = [(b, tx) for b in blocks for tx in b.transactions if tx.sender in watched or (tx.to or "") in watched]
    if tracked:
        batch.included = [Included(tx, b.number, b.hash) for b, tx in native if tx.sender in tracked]
    # One batch for the receipts of every value transfer (a reverted one moved nothing).
    receipts = client.receipts([tx.hash for _, tx in native if tx.value > 0])
    for block, tx in native:
        if tx.sender in watched:
            touched.add((tx.sender, ""))  # gas is paid even when no value moves
        if tx.value <= 0:
            continue
        if tx.to in watched:
            touched.add((tx.to or "", ""))
        receipt = receipts.get(tx.hash)
        succeeded = receipt is None or receipt.status == 1
        for address in {tx.sender, tx.to or ""} & watched:
            payload = native_update(
                tx,
                address=address,
                chain_id=chain.chain_id,
                symbol=chain.native_symbol,
                block=block.number,
                block_hash=block.hash,
                head=head,
                required=required,
                succeeded=succeeded,
                timestamp_ms=_ms(block.timestamp),
            )
            batch.rows.append(
                ActivityRow(
                    payload["address"],
                    "transaction",
                    block.hash,
                    tx.hash,
                    -1,
                    "",
                    block.number,
                    block.timestamp,
                    payload,
                )
            )
    if traces:
        _internal_transfers(batch, chain, client, blocks, watched, touched, head, traces)
    batch.rows.sort(key=_order)
    if history_balances_at is None:
        current = _balance_changes(batch, chain, listener, touched, infos, start, end)
    else:
        wanted = {(e.address, e.token) for e in granted if e.standard == "erc20"}
        current = read_balances(client, wanted, block=history_balances_at) if wanted else {}
    if granted:
        known = known_spenders(chain=chain, spenders={e.fields.get("spender") or e.fields["operator"] for e in granted})
        batch.approvals = classify_events(granted, balances=current, known=known, infos=infos)
        for approval in batch.approvals:
            warning = warning_data(approval)
            if warning is not None:
                approval_payloads[(approval.owner, approval.tx_hash, approval.log_index)]["warning"] = warning
    last = by_number[end]
    for change in batch.balances:
        payload = balance_update(
            address=change.address,
            chain_id=chain.chain_id,
            token=change.token,
            symbol=change.symbol,
            decimals=change.decimals,
            previous=change.previous,
            current=change.current,
            block=change.block,
            timestamp_ms=_ms(last.timestamp),
        )
        batch.rows.append(
            ActivityRow(
                payload["address"],
                "balance",
                last.hash,
                "",
                -1,
                checksum_lower(change.token) if change.token else "",
                end,
                last.timestamp,
                payload,
            )
        )
    return batch


def _internal_transfers(
    batch: Batch,
    chain: Chain,
    client: Any,
    blocks: list[Block],
    watched: set[str],
    touched: set[tuple[str, str]],
    head: int,
    method: str,
) -> None:
    """Rows for native value moved to or from watched addresses inside contract calls."""
    by_number = {b.number: b for b in blocks}
    for number, transfers in client.traces(method, [b.number for b in blocks]).items():
        block = by_number[number]
        for transfer in transfers:
            for address in {transfer.sender, transfer.to} & watched:
                touched.add((address, ""))
                payload = internal_update(
                    transfer,
                    address=address,
                    chain_id=chain.chain_id,
                    symbol=chain.native_symbol,
                    block=number,
                    block_hash=block.hash,
                    head=head,
                    required=chain.required_confirmations,
                    timestamp_ms=_ms(block.timestamp),
                )
                batch.rows.append(
                    ActivityRow(
                        payload["address"],
                        "internal",
                        block.hash,
                        transfer.tx_hash,
                        transfer.index,
                        "",
                        number,
                        block.timestamp,
                        payload,
                    )
                )


def _order(row: ActivityRow) -> tuple[int, int, str]:
    """Activity in chain order: block, then log (native transfers, log_index -1, first)."""
    return row.block_number, row.log_index, row.address


def _balance_changes(
    batch: Batch,
    chain: Chain,
    listener: BlockListener,
    touched: set[tuple[str, str]],
    infos: dict[str, TokenInfo],
    start: int,
    end: int,
) -> dict[tuple[str, str], int | None]:
    """Record the balance changes of `touched` pairs; returns their balances at `end`."""
    if not touched:
        return {}
    client = listener.client(chain)
    known = stored_balances(chain=chain, pairs=touched)
    current = read_balances(client, touched, block=end)
    # A pair seen for the first time gets its baseline from just before the batch, so
    # the first delta is what this batch changed, not the whole balance.
    unknown = [pair for pair in touched if pair not in known and current.get(pair) is not None]
    baseline = read_balances(client, unknown, block=max(0, start - 1)) if unknown else {}
    for pair in sorted(touched):
        now = current.get(pair)
        if now is None:
            continue  # no usable balanceOf (non-standard token): nothing to report
        before = known.get(pair, baseline.get(pair))
        if before is None:
            # balanceOf works now but not before the batch: the token was deployed in it.
            before = 0
        if before == now:
            continue
        address, token = pair
        info = infos.get(token) if token else None
        batch.balances.append(
            BalanceChange(
                address=address,
                token=token,
                symbol=(info.symbol if info else chain.native_symbol),
                decimals=(info.decimals if info else 18),
                previous=before,
                current=now,
                block=end,
            )
        )
    return current


def _mined(blocks: list[Block], watched_nonces: set[tuple[str, int]]) -> dict[tuple[str, int], Tx]:
    if not watched_nonces:
        return {}
    out: dict[tuple[str, int], Tx] = {}
    for block in blocks:
        for tx in block.transactions:
            key = (tx.sender, tx.nonce)
            if key in watched_nonces:
                out[key] = Tx(
                    hash=tx.hash,
                    sender=tx.sender,
                    to=tx.to,
                    value=tx.value,
                    nonce=tx.nonce,
                    input=tx.input,
                    block_number=block.number,
                    block_hash=block.hash,
                )
    return out
