"""DRF serializers of the wallets API (input validation and output shapes)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from .models import Chain, Wallet, WalletActivity
from .payloads import BackfillProgress
from .selectors import backfills_of


class ChainSerializer(serializers.ModelSerializer[Chain]):
    class Meta:
        model = Chain
        fields = ["chain_id", "name", "native_symbol", "required_confirmations", "poll_interval", "enabled"]


class WalletSerializer(serializers.ModelSerializer[Wallet]):
    chains = serializers.SerializerMethodField()
    verified = serializers.BooleanField(read_only=True)
    backfill = serializers.SerializerMethodField()

    class Meta:
        model = Wallet
        fields = ["id", "address", "label", "chains", "watch_only", "verified", "verified_at", "created_at", "backfill"]

    def get_chains(self, wallet: Wallet) -> list[int]:
        return sorted(c.chain_id for c in wallet.chains.all())

    def get_backfill(self, wallet: Wallet) -> list[BackfillProgress]:
        """History read on link, per chain: state, blocks done of total, items found."""
        return backfills_of([wallet.address])[wallet.address]


class LinkSerializer(serializers.Serializer[Any]):
    address = serializers.CharField(max_length=64)
    label = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")  # type: ignore[assignment]
    chains = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, default=list)
    watch_only = serializers.BooleanField()

    def validate_watch_only(self, value: bool) -> bool:
        if not value:
            raise serializers.ValidationError("to prove ownership, sign a challenge: POST challenge/ then verify/")
        return value


class ChallengeSerializer(serializers.Serializer[Any]):
    address = serializers.CharField(max_length=64)
    chain = serializers.IntegerField(min_value=1)


class VerifySerializer(serializers.Serializer[Any]):
    nonce = serializers.CharField(max_length=32)
    signature = serializers.CharField(max_length=200)
    label = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")  # type: ignore[assignment]
    chains = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, default=list)


class WatchSerializer(serializers.Serializer[Any]):
    chain = serializers.IntegerField(min_value=1)
    hash = serializers.CharField(max_length=80)


class ActivitySerializer(serializers.ModelSerializer[WalletActivity]):
    """An activity row is exactly the WalletUpdate that was published for it."""

    class Meta:
        model = WalletActivity
        fields = ["id", "payload"]

    def to_representation(self, instance: WalletActivity) -> dict[str, Any]:
        return {"id": instance.pk, **instance.payload}


# --- OpenAPI shapes of /api/wallets/ responses (documentation: the views build the data) ----

WalletErrorOut = inline_serializer("WalletError", {"code": serializers.CharField(), "detail": serializers.JSONField()})

WalletList = inline_serializer("WalletList", {"wallets": WalletSerializer(many=True)})

ChainList = inline_serializer("ChainList", {"chains": ChainSerializer(many=True)})

Challenge = inline_serializer(
    "WalletChallenge",
    {
        "nonce": serializers.CharField(),
        "message": serializers.CharField(help_text="the EIP-4361 text to sign"),
        "address": serializers.CharField(),
        "expires_at": serializers.IntegerField(help_text="ms since the epoch"),
    },
)

TransactionStatus = inline_serializer(
    "WatchedTransactionStatus",
    {
        "hash": serializers.CharField(),
        "status": serializers.ChoiceField(
            choices=["pending", "included", "confirmed", "failed", "dropped", "replaced"]
        ),
        "confirmations": serializers.IntegerField(),
        "required": serializers.IntegerField(),
        "block": serializers.IntegerField(allow_null=True),
        "from": serializers.CharField(allow_null=True),
        "to": serializers.CharField(allow_null=True),
        "value": serializers.FloatField(help_text="in the native coin"),
        "value_raw": serializers.CharField(help_text="wei"),
        "nonce": serializers.IntegerField(allow_null=True),
        "chain": serializers.IntegerField(),
        "reason": serializers.CharField(required=False),
        "found": serializers.CharField(required=False),
        "note": serializers.CharField(required=False),
        "replaced_by": serializers.CharField(required=False),
    },
)


#: One activity row: the WalletUpdate published for it, with its id (docs/wallets.md).
ActivityItem = inline_serializer(
    "WalletActivityItem",
    {
        "id": serializers.IntegerField(),
        "type": serializers.CharField(),
        "address": serializers.CharField(),
        "chain": serializers.IntegerField(),
        "timestamp": serializers.IntegerField(),
        "data": serializers.DictField(),
    },
)

ActivityPage = inline_serializer(
    "WalletActivityPage",
    {
        "next": serializers.CharField(allow_null=True),
        "previous": serializers.CharField(allow_null=True),
        "results": serializers.ListField(child=ActivityItem),
    },
)


def errors(*statuses: int) -> dict[int, Any]:
    """`responses` entries for the coded errors a view answers."""
    return dict.fromkeys(statuses, WalletErrorOut)
