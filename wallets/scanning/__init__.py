"""Chain scanning: cursor to head in batches, reorg roll-back, activity written with the cursor."""

from .reorg import CursorMoved, ReorgTooDeep
from .scanner import ScanResult, chain_scan

__all__ = ["CursorMoved", "ReorgTooDeep", "ScanResult", "chain_scan"]
