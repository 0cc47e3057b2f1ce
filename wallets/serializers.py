"""DRF serializers of the wallets API (input validation and output shapes)."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from .models import Chain, Wallet, WalletActivity
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

    def get_backfill(self, wallet: Wallet) -> list[dict[str, Any]]:
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
