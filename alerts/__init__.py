"""Alerts: price and portfolio alert rules evaluated on every price batch."""
