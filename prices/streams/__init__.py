"""Stream adapters of the venues with a public market-data WebSocket: pure protocols, one I/O client."""
