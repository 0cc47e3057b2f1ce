"""Writes of the wallets app, one module per concept (reads are in `wallets/selectors.py`)."""
