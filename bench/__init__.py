"""Benchmarks (plain scripts, not tests): see docs/benchmarks.md for commands and results."""
