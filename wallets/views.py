"""DRF views of /api/wallets/: link, verify, unlink, activity, transaction watching."""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from realtime_project.accounts.identity import signed_in_user_id

from .addresses import InvalidAddress, InvalidTxHash, checksum, normalise_tx_hash
from .errors import WalletError
from .payloads import TransactionData
from .selectors import UnknownChain, activity_for, enabled_chains, user_owns_address, wallets_of
from .serializers import (
    ActivityPage,
    ActivitySerializer,
    ChainList,
    ChainSerializer,
    Challenge,
    ChallengeSerializer,
    LinkSerializer,
    TransactionStatus,
    VerifySerializer,
    WalletList,
    WalletSerializer,
    WatchSerializer,
    errors,
)
from .services.linking import wallet_challenge_create, wallet_link_watch_only, wallet_unlink, wallet_verify
from .services.transactions import TransactionMonitor, transaction_unwatch, transaction_watch
from .siwe import BadSignature
from .tasks import track_transactions


def _uid(request: Request) -> int:
    """The signed-in user's id (every view here requires IsAuthenticated)."""
    return signed_in_user_id(request)


def error(code: str, detail: str, status_code: int = 400) -> Response:
    return Response({"code": code, "detail": detail}, status=status_code)


class WalletsView(APIView):
    """Signed-in users only; the app's domain errors become coded responses here, once,
    through DRF's own exception hook (anything else takes DRF's handling)."""

    permission_classes = [IsAuthenticated]

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, WalletError):
            return error(exc.code, str(exc), exc.status)
        if isinstance(exc, (InvalidAddress, InvalidTxHash, BadSignature)):
            return error(exc.code, str(exc))
        if isinstance(exc, UnknownChain):
            return error(exc.code, str(exc), 404)
        return super().handle_exception(exc)


class ChainsView(WalletsView):
    @extend_schema(responses={200: ChainList})
    def get(self, request: Request) -> Response:
        return Response({"chains": ChainSerializer(enabled_chains(), many=True).data})


class WalletListView(WalletsView):
    @extend_schema(responses={200: WalletList})
    def get(self, request: Request) -> Response:
        return Response({"wallets": WalletSerializer(wallets_of(user_id=_uid(request)), many=True).data})

    @extend_schema(
        request=LinkSerializer,
        responses={201: WalletSerializer, **errors(400, 404, 409)},
    )
    def post(self, request: Request) -> Response:
        s = LinkSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        wallet = wallet_link_watch_only(
            user_id=_uid(request),
            address=s.validated_data["address"],
            label=s.validated_data["label"],
            chain_ids=s.validated_data["chains"],
        )
        return Response(WalletSerializer(wallet).data, status=status.HTTP_201_CREATED)


class WalletDetailView(WalletsView):
    @extend_schema(responses={204: None, **errors(404)})
    def delete(self, request: Request, wallet_id: int) -> Response:
        wallet_unlink(user_id=_uid(request), wallet_id=wallet_id)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ChallengeView(WalletsView):
    @extend_schema(request=ChallengeSerializer, responses={201: Challenge, **errors(400, 404)})
    def post(self, request: Request) -> Response:
        s = ChallengeSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        challenge = wallet_challenge_create(
            user_id=_uid(request),
            address=s.validated_data["address"],
            chain_id=s.validated_data["chain"],
            # The page's host: what the wallet compares the message's domain with.
            domain=request.get_host(),
            uri=f"{request.scheme}://{request.get_host()}",
        )
        return Response(
            {
                "nonce": challenge.nonce,
                "message": challenge.message,
                "address": challenge.address,
                "expires_at": int(challenge.expires_at.timestamp() * 1000),
            },
            status=status.HTTP_201_CREATED,
        )


class VerifyView(WalletsView):
    @extend_schema(
        request=VerifySerializer,
        responses={200: WalletSerializer, **errors(400, 403, 404, 409)},
    )
    def post(self, request: Request) -> Response:
        s = VerifySerializer(data=request.data)
        s.is_valid(raise_exception=True)
        wallet = wallet_verify(
            user_id=_uid(request),
            nonce=s.validated_data["nonce"],
            signature=s.validated_data["signature"],
            label=s.validated_data["label"],
            chain_ids=s.validated_data["chains"],
        )
        return Response(WalletSerializer(wallet).data, status=status.HTTP_200_OK)


class ActivityPagination(CursorPagination):
    ordering = "-id"
    page_size = 50
    max_page_size = 200
    page_size_query_param = "page_size"


class ActivityView(WalletsView):
    """`?address=0x…` (one of yours), optional `chain` and `kind`; newest first, cursor-paginated."""

    @extend_schema(
        parameters=[
            OpenApiParameter("address", str, required=True, description="one of your linked addresses"),
            OpenApiParameter("chain", int, required=False),
            OpenApiParameter(
                "kind", str, required=False, enum=["balance", "transaction", "approval", "nft", "internal"]
            ),
            OpenApiParameter("cursor", str, required=False),
            OpenApiParameter("page_size", int, required=False),
        ],
        responses={200: ActivityPage, **errors(400, 403)},
    )
    def get(self, request: Request) -> Response:
        address = checksum(request.query_params.get("address", ""))
        if not user_owns_address(user_id=_uid(request), address=address):
            return error("forbidden", "this address is not linked to your account", 403)
        chain: int | None = None
        if request.query_params.get("chain"):
            try:
                chain = int(request.query_params["chain"])
            except ValueError:
                return error("bad_request", "chain must be an integer chain id")
        kind = request.query_params.get("kind") or None
        if kind is not None and kind not in ("balance", "transaction", "approval", "nft", "internal"):
            return error("bad_request", "kind must be balance, transaction, approval, nft or internal")
        paginator = ActivityPagination()
        page = paginator.paginate_queryset(activity_for(address=address, chain_id=chain, kind=kind), request, view=self)
        return paginator.get_paginated_response(ActivitySerializer(page, many=True).data)


class TransactionWatchView(WalletsView):
    @extend_schema(request=WatchSerializer, responses={201: TransactionStatus, **errors(400, 404)})
    def post(self, request: Request) -> Response:
        s = WatchSerializer(data=request.data)
        s.is_valid(raise_exception=True)
        tx = transaction_watch(
            user_id=_uid(request), chain_id=s.validated_data["chain"], tx_hash=s.validated_data["hash"]
        )
        chain_id = tx.chain.chain_id
        transaction.on_commit(lambda: _enqueue_tracking(chain_id))
        return Response(_status(chain_id, tx.hash), status=status.HTTP_201_CREATED)


class TransactionDetailView(WalletsView):
    """One watched transaction, as the caller sees it: theirs if they watch it or proved they
    own its sender or recipient; anyone else gets the same 404 as for an unknown hash."""

    @extend_schema(responses={200: TransactionStatus, **errors(400, 404)})
    def get(self, request: Request, chain_id: int, tx_hash: str) -> Response:
        normalised = normalise_tx_hash(tx_hash)
        data = TransactionMonitor().get_status(normalised, chain_id, user_id=_uid(request))
        if data is None:
            return error("not_found", "this transaction is not watched", 404)
        return Response(data)

    @extend_schema(responses={204: None, **errors(400, 404)})
    def delete(self, request: Request, chain_id: int, tx_hash: str) -> Response:
        """Stop watching it (only the caller's own watch)."""
        found = transaction_unwatch(user_id=_uid(request), chain_id=chain_id, tx_hash=tx_hash)
        if not found:
            return error("not_found", "this transaction is not watched", 404)
        return Response(status=status.HTTP_204_NO_CONTENT)


def _status(chain_id: int, tx_hash: str) -> TransactionData | dict[str, Any]:
    return TransactionMonitor().get_status(tx_hash, chain_id) or {}


def _enqueue_tracking(chain_id: int) -> None:
    track_transactions.delay(chain_id)
