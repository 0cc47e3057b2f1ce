"""Chain scanning: cursor to head in batches, reorg roll-back, activity written with the cursor.

`scanner.chain_scan` is the entry point; the package itself imports nothing, so the history
backfill can share `batch` and `store` without an import cycle through the scanner.
"""
