"""Wallets data: chains and their scan cursors, linked wallets, activity, tracked transactions."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from .choices import ActivityKind, ApprovalStandard, BackfillState, TxStatus


def validate_ws_url(value: str) -> None:
    if value and not value.startswith(("ws://", "wss://")):
        raise ValidationError("a WebSocket URL starts with ws:// or wss://")


class Chain(models.Model):
    """An EVM chain the platform scans (one Celery scan per enabled chain)."""

    chain_id = models.PositiveBigIntegerField(unique=True, help_text="EIP-155 chain id")
    name = models.CharField(max_length=60)
    rpc_url = models.CharField(max_length=500, help_text="JSON-RPC endpoint (http/https)")
    ws_url = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_ws_url],
        help_text="WebSocket JSON-RPC endpoint (ws/wss): heads and pending transactions pushed by the node; "
        "empty: HTTP polling only",
    )
    required_confirmations = models.PositiveIntegerField(help_text="blocks on top before a transaction is confirmed")
    poll_interval = models.FloatField(
        default=12.0, help_text="seconds between scans when heads are not pushed (about the block time)"
    )
    native_symbol = models.CharField(max_length=12, default="ETH")
    enabled = models.BooleanField(default=True)
    start_block = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="first block to scan when there is no cursor (empty: the current head)"
    )
    traces = models.CharField(
        max_length=4,
        choices=[("auto", "when the node offers them"), ("off", "off")],
        default="auto",
        help_text="internal transfers from call traces (debug_traceBlockByNumber or trace_block)",
    )
    backfill_blocks = models.PositiveIntegerField(
        null=True, blank=True, help_text="blocks of history read when a wallet is linked (empty: a day of blocks)"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["chain_id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.chain_id})"


class ChainCursor(models.Model):
    """The last block fully processed on a chain: activity up to it is committed."""

    chain = models.OneToOneField(Chain, on_delete=models.CASCADE, related_name="cursor")
    block_number = models.PositiveBigIntegerField()
    block_hash = models.CharField(max_length=66)
    head_number = models.PositiveBigIntegerField(null=True, blank=True, help_text="node head at the last scan")
    trace_method = models.CharField(
        max_length=32, blank=True, help_text="call-trace method the node answered, or 'unsupported'"
    )
    trace_detail = models.CharField(max_length=300, blank=True, help_text="why traces are unsupported")
    trace_checked_at = models.DateTimeField(null=True, blank=True)
    links_version = models.PositiveBigIntegerField(
        default=0, help_text="bumped by each link: a scan running with older addresses extends their backfills"
    )
    last_scan_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=64, blank=True, help_text="error code of the last failed scan")
    last_error_detail = models.TextField(blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.chain_id}@{self.block_number}"


class ScannedBlock(models.Model):
    """Recent canonical blocks (number -> hash, parent) to find the common ancestor of a reorg."""

    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="+")
    number = models.PositiveBigIntegerField()
    hash = models.CharField(max_length=66)
    parent_hash = models.CharField(max_length=66)
    timestamp = models.PositiveBigIntegerField(help_text="seconds since the epoch")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain", "number"], name="scannedblock_unique_number")]


class Wallet(models.Model):
    """An address a user linked: verified by a signed message (EIP-4361 style) or watch-only."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="wallets")
    address = models.CharField(max_length=42, help_text="EIP-55 checksummed address")
    label = models.CharField(max_length=100, blank=True)
    chains = models.ManyToManyField(Chain, blank=True, related_name="wallets", help_text="empty: every enabled chain")
    watch_only = models.BooleanField(default=True)
    verified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "address"], name="wallet_unique_per_user")]
        indexes = [models.Index(fields=["address"])]

    def __str__(self) -> str:
        return f"{self.address} ({self.user_id})"

    @property
    def verified(self) -> bool:
        return self.verified_at is not None


class WalletChallenge(models.Model):
    """A single-use sign-in message (EIP-4361) a user must sign to prove an address is theirs."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=42)
    chain_id = models.PositiveBigIntegerField()
    nonce = models.CharField(max_length=32, unique=True)
    message = models.TextField()
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)


class WalletActivity(models.Model):
    """One thing that happened to a watched address in a block.

    The natural key (chain, address, kind, block hash, tx hash, log index, token) makes a
    re-scan idempotent; log_index is -1 for native transfers and balance changes.
    """

    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="activity")
    address = models.CharField(max_length=42)
    kind = models.CharField(max_length=12, choices=ActivityKind.choices)
    block_number = models.PositiveBigIntegerField()
    block_hash = models.CharField(max_length=66)
    tx_hash = models.CharField(max_length=66, blank=True)
    log_index = models.IntegerField()
    token = models.CharField(max_length=42, blank=True, help_text="token contract; empty for the native coin")
    payload = models.JSONField(help_text="the WalletUpdate published for this row")
    timestamp = models.DateTimeField(help_text="block time")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["chain", "address", "kind", "block_hash", "tx_hash", "log_index", "token"],
                name="walletactivity_natural_key",
            )
        ]
        indexes = [
            models.Index(fields=["address", "-id"], name="walletactivity_address_id"),
            models.Index(fields=["chain", "block_number"], name="walletactivity_chain_block"),
        ]


class Balance(models.Model):
    """The last known balance of a watched address in the native coin or an ERC-20 token."""

    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=42)
    token = models.CharField(max_length=42, blank=True)
    symbol = models.CharField(max_length=32, blank=True)
    decimals = models.PositiveSmallIntegerField(null=True, blank=True, help_text="empty: unknown (raw units)")
    amount = models.DecimalField(max_digits=78, decimal_places=0, help_text="raw units (wei)")
    block_number = models.PositiveBigIntegerField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain", "address", "token"], name="balance_unique")]


class TokenMetadata(models.Model):
    """Token facts read once per contract (symbol, decimals), tolerant of non-standard tokens."""

    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=42)
    symbol = models.CharField(max_length=32, blank=True)
    name = models.CharField(max_length=100, blank=True)
    decimals = models.PositiveSmallIntegerField(null=True, blank=True)
    issues = models.CharField(max_length=200, blank=True, help_text="why a field is missing or guessed")
    fetched_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain", "address"], name="tokenmetadata_unique")]


class SkippedLog(models.Model):
    """A log or block the scanner could not use, with the reason (never silently dropped)."""

    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="+")
    block_number = models.PositiveBigIntegerField()
    block_hash = models.CharField(max_length=66)
    tx_hash = models.CharField(max_length=66, blank=True)
    log_index = models.IntegerField()
    reason = models.CharField(max_length=64)
    detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["chain", "block_hash", "tx_hash", "log_index"], name="skippedlog_natural_key"
            )
        ]


class WatchedTransaction(models.Model):
    """A transaction followed from pending to confirmed (or failed, dropped, replaced)."""

    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="transactions")
    hash = models.CharField(max_length=66)
    status = models.CharField(max_length=12, choices=TxStatus.choices, default=TxStatus.PENDING)
    confirmations = models.PositiveIntegerField(default=0)
    required = models.PositiveIntegerField()
    block_number = models.PositiveBigIntegerField(null=True, blank=True)
    block_hash = models.CharField(max_length=66, blank=True)
    nonce = models.PositiveBigIntegerField(null=True, blank=True)
    from_address = models.CharField(max_length=42, blank=True)
    to_address = models.CharField(max_length=42, blank=True)
    value = models.DecimalField(max_digits=78, decimal_places=0, default=0, help_text="wei")
    reason = models.CharField(max_length=300, blank=True, help_text="revert reason or why it was dropped")
    replaced_by = models.CharField(max_length=66, blank=True)
    missing_polls = models.PositiveIntegerField(default=0)
    missing_since = models.DateTimeField(null=True, blank=True, help_text="first poll that found no trace of it")
    found = models.CharField(
        max_length=10, blank=True, help_text="how it was found: api (posted), pending (mempool), inclusion (a block)"
    )
    note = models.CharField(max_length=300, blank=True, help_text="e.g. why the sender's nonce jumped")
    notified = models.CharField(max_length=12, blank=True, help_text="last status listeners were told about")
    watchers = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain", "hash"], name="watchedtx_unique")]
        indexes = [models.Index(fields=["chain", "status"], name="watchedtx_chain_status")]


class KnownContract(models.Model):
    """A well-known contract of a chain (DEX router, Permit2, marketplace), edited in the admin.

    An approval to a spender on this list is still raised (unlimited is unlimited), at
    priority high; to any other spender it is urgent.
    """

    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="known_contracts")
    address = models.CharField(max_length=42, help_text="EIP-55 checksummed address")
    name = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain", "address"], name="knowncontract_unique")]
        ordering = ["chain", "name"]

    def __str__(self) -> str:
        return f"{self.name} {self.address} ({self.chain_id})"


class TokenApproval(models.Model):
    """The current approval a linked owner gave a spender on a token, from its newest event.

    One row per (chain, owner, token, spender, standard), moved only by a newer event
    (block, log index), so the live scan and a history backfill may meet in any order.
    `warning` is set while the approval is dangerous (unlimited, above the owner's
    balance, or ApprovalForAll(true)); a revocation clears it.
    """

    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="+")
    owner = models.CharField(max_length=42)
    token = models.CharField(max_length=42)
    spender = models.CharField(max_length=42)
    standard = models.CharField(max_length=10, choices=ApprovalStandard.choices)
    amount = models.DecimalField(
        max_digits=78, decimal_places=0, help_text="raw allowance; 1/0 for ApprovalForAll true/false"
    )
    warning = models.CharField(
        max_length=20, blank=True, help_text="unlimited, above_balance, approval_for_all or empty"
    )
    level = models.CharField(max_length=10, blank=True, help_text="high, or urgent for an unknown spender")
    block_number = models.PositiveBigIntegerField()
    block_hash = models.CharField(max_length=66)
    tx_hash = models.CharField(max_length=66)
    log_index = models.IntegerField()
    raised_at = models.DateTimeField(null=True, blank=True, help_text="when the current warning was raised")
    notified_at = models.DateTimeField(null=True, blank=True, help_text="when the owners were notified of it")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["chain", "owner", "token", "spender", "standard"], name="tokenapproval_unique"
            )
        ]
        indexes = [models.Index(fields=["owner", "warning"], name="tokenapproval_owner_warning")]

    def __str__(self) -> str:
        return f"{self.owner} -> {self.spender} on {self.token} ({self.chain_id})"


class WalletBackfill(models.Model):
    """The history of a linked address on a chain, read once in the background (wallets/scanning/backfill.py).

    One per (chain, address), shared by every user who links it. Blocks `from_block` to
    `to_block`; `next_block` is the first one not read yet, committed with the rows of
    each batch, so a restart resumes there.
    """

    chain = models.ForeignKey(Chain, on_delete=models.CASCADE, related_name="+")
    address = models.CharField(max_length=42)
    depth = models.PositiveIntegerField(help_text="blocks of history asked for")
    from_block = models.PositiveBigIntegerField(null=True, blank=True)
    to_block = models.PositiveBigIntegerField(null=True, blank=True)
    next_block = models.PositiveBigIntegerField(null=True, blank=True)
    state = models.CharField(max_length=10, choices=BackfillState.choices, default=BackfillState.QUEUED)
    found = models.PositiveIntegerField(default=0, help_text="activity items written")
    error = models.CharField(max_length=64, blank=True, help_text="error code of the last failed run (retried)")
    error_detail = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["chain", "address"], name="walletbackfill_unique")]
        indexes = [models.Index(fields=["chain", "state"], name="walletbackfill_chain_state")]

    def __str__(self) -> str:
        return f"{self.address} on {self.chain_id}: {self.state}"
