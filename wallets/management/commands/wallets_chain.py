"""`manage.py wallets_chain <chain_id> <rpc_url> [--name ..]`: add or update a chain to scan."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from wallets.services.chains import chain_register


class Command(BaseCommand):
    help = "Add or update an EVM chain to scan (confirmations and poll interval default from the chain facts)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("chain_id", type=int)
        parser.add_argument("rpc_url")
        parser.add_argument("--name", default="")
        parser.add_argument("--ws-url", default="", help="ws(s):// endpoint: pushed heads and pending transactions")
        parser.add_argument("--confirmations", type=int, default=None)
        parser.add_argument("--poll-interval", type=float, default=None)
        parser.add_argument("--native-symbol", default="ETH")
        parser.add_argument("--start-block", type=int, default=None)
        parser.add_argument("--disabled", action="store_true")

    def handle(self, *args: Any, **options: Any) -> None:
        url: str = options["rpc_url"]
        if not url.startswith(("http://", "https://")):
            raise CommandError("rpc_url must be an http(s) JSON-RPC endpoint")
        if options["ws_url"] and not options["ws_url"].startswith(("ws://", "wss://")):
            raise CommandError("--ws-url must be a ws(s):// JSON-RPC endpoint")
        if options["chain_id"] <= 0:
            raise CommandError("chain_id must be a positive EIP-155 chain id")
        chain = chain_register(
            chain_id=options["chain_id"],
            name=options["name"] or f"chain {options['chain_id']}",
            rpc_url=url,
            ws_url=options["ws_url"],
            required_confirmations=options["confirmations"],
            poll_interval=options["poll_interval"],
            native_symbol=options["native_symbol"],
            enabled=not options["disabled"],
            start_block=options["start_block"],
        )
        self.stdout.write(
            f"chain {chain.chain_id} ({chain.name}): {chain.required_confirmations} confirmations, "
            f"poll every {chain.poll_interval:g}s, {'enabled' if chain.enabled else 'disabled'}"
            + (f", heads pushed from {chain.ws_url}" if chain.ws_url else "")
        )
