"""OpenAPI shapes of /api/wallets/ responses (documentation: the views build the data)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

from .serializers import ActivitySerializer, ChainSerializer, WalletSerializer

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


__all__: list[Any] = [
    "ActivityItem",
    "ActivityPage",
    "ActivitySerializer",
    "ChainList",
    "Challenge",
    "TransactionStatus",
    "WalletErrorOut",
    "WalletList",
    "errors",
]
