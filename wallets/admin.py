"""Admin of chains, cursors, wallets, activity and tracked transactions (actions call services)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from .addresses import InvalidAddress, checksum
from .models import (
    Balance,
    Chain,
    ChainCursor,
    KnownContract,
    SkippedLog,
    TokenApproval,
    TokenMetadata,
    Wallet,
    WalletActivity,
    WalletBackfill,
    WatchedTransaction,
)
from .rpc import RpcError
from .scanning.reorg import CursorMoved, ReorgTooDeep, chain_rescan_deep
from .tasks import scan_chain


@admin.register(Chain)
class ChainAdmin(admin.ModelAdmin[Chain]):
    list_display = ("chain_id", "name", "rpc_url", "ws_url", "required_confirmations", "poll_interval", "enabled")
    list_filter = ("enabled",)
    actions = ["scan_now"]

    @admin.action(description="Scan the selected chains now")
    def scan_now(self, request: HttpRequest, queryset: QuerySet[Chain]) -> None:
        for chain in queryset:
            scan_chain.delay(chain.chain_id)
        messages.info(request, f"scan enqueued for {queryset.count()} chain(s)")


@admin.register(ChainCursor)
class ChainCursorAdmin(admin.ModelAdmin[ChainCursor]):
    list_display = ("chain", "block_number", "head_number", "last_scan_at", "last_error", "last_error_at")
    readonly_fields = ("block_hash", "last_error_detail")
    actions = ["rescan_deep"]

    @admin.action(description="Deep reorg: roll back to the last common ancestor and rescan")
    def rescan_deep(self, request: HttpRequest, queryset: QuerySet[ChainCursor]) -> None:
        """For `reorg_too_deep` (a fork older than the reorg window): see docs/wallets.md."""
        for cursor in queryset.select_related("chain"):
            chain_id = cursor.chain.chain_id
            try:
                reorg = chain_rescan_deep(chain_id=chain_id)
            except (RpcError, ReorgTooDeep, CursorMoved) as exc:
                messages.error(request, f"chain {chain_id}: not rolled back: {exc}")
                continue
            messages.warning(
                request,
                f"chain {chain_id}: rolled back {reorg.depth} blocks to block {reorg.ancestor} "
                f"({reorg.removed} activity rows corrected); the next scan reads the node's fork from there",
            )


@admin.register(Wallet)
class WalletAdmin(admin.ModelAdmin[Wallet]):
    list_display = ("address", "user", "label", "watch_only", "verified_at", "created_at")
    list_filter = ("watch_only",)
    search_fields = ("address", "label", "user__username")
    filter_horizontal = ("chains",)


@admin.register(WalletActivity)
class WalletActivityAdmin(admin.ModelAdmin[WalletActivity]):
    list_display = ("address", "chain", "kind", "block_number", "tx_hash", "log_index", "token", "timestamp")
    list_filter = ("kind", "chain")
    search_fields = ("address", "tx_hash")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # activity mirrors the chain; edit nothing by hand


@admin.register(WatchedTransaction)
class WatchedTransactionAdmin(admin.ModelAdmin[WatchedTransaction]):
    list_display = ("hash", "chain", "status", "confirmations", "required", "block_number", "from_address", "found")
    list_filter = ("status", "found", "chain")
    search_fields = ("hash", "from_address", "to_address")


@admin.register(Balance)
class BalanceAdmin(admin.ModelAdmin[Balance]):
    list_display = ("address", "chain", "token", "symbol", "amount", "block_number")
    search_fields = ("address", "token", "symbol")


@admin.register(TokenMetadata)
class TokenMetadataAdmin(admin.ModelAdmin[TokenMetadata]):
    list_display = ("address", "chain", "symbol", "decimals", "issues")
    search_fields = ("address", "symbol")


@admin.register(SkippedLog)
class SkippedLogAdmin(admin.ModelAdmin[SkippedLog]):
    list_display = ("chain", "block_number", "tx_hash", "log_index", "reason", "created_at")
    list_filter = ("reason", "chain")


class KnownContractForm(forms.ModelForm[KnownContract]):
    class Meta:
        model = KnownContract
        fields = ["chain", "address", "name"]

    def clean_address(self) -> str:
        try:
            return checksum(self.cleaned_data["address"])
        except InvalidAddress as exc:
            raise forms.ValidationError(str(exc)) from None


@admin.register(KnownContract)
class KnownContractAdmin(admin.ModelAdmin[KnownContract]):
    """Spenders users commonly approve (routers, Permit2, marketplaces): an approval to one of
    these is raised at priority high; to any other spender, urgent."""

    form = KnownContractForm
    list_display = ("name", "address", "chain", "created_at")
    list_filter = ("chain",)
    search_fields = ("name", "address")


@admin.register(TokenApproval)
class TokenApprovalAdmin(admin.ModelAdmin[TokenApproval]):
    list_display = ("owner", "chain", "token", "spender", "standard", "warning", "level", "block_number", "raised_at")
    list_filter = ("warning", "level", "standard", "chain")
    search_fields = ("owner", "token", "spender")

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the chain's events move it; edit nothing by hand


@admin.register(WalletBackfill)
class WalletBackfillAdmin(admin.ModelAdmin[WalletBackfill]):
    list_display = ("address", "chain", "state", "from_block", "to_block", "next_block", "found", "error", "updated_at")
    list_filter = ("state", "chain")
    search_fields = ("address",)
    readonly_fields = ("error_detail",)
