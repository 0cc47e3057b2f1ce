"""Prices: source adapters, aggregation, change-driven publishing, market overview."""
