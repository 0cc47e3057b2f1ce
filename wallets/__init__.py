"""Wallets: linked addresses, chain scanning, activity, transaction tracking."""
