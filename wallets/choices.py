"""The wallets app's enums: activity kinds, transaction statuses, approval standards, backfill states."""

from __future__ import annotations

from django.db import models


class ActivityKind(models.TextChoices):
    BALANCE = "balance"
    TRANSACTION = "transaction"
    APPROVAL = "approval"
    NFT = "nft"
    INTERNAL = "internal", "internal transfer (inside a contract call)"


class TxStatus(models.TextChoices):
    PENDING = "pending"
    INCLUDED = "included"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    DROPPED = "dropped"
    REPLACED = "replaced"


#: Statuses the monitor still polls (a reorg rolled back by the scanner reopens the others).
OPEN_STATUSES = (TxStatus.PENDING, TxStatus.INCLUDED)


class ApprovalStandard(models.TextChoices):
    ERC20 = "erc20", "ERC-20 allowance"
    OPERATOR = "operator", "ApprovalForAll (every NFT of the collection)"


class BackfillState(models.TextChoices):
    WAITING = "waiting", "waiting for the chain's first scan"
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
