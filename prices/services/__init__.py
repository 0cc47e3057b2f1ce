"""Writes of the prices app (`<entity>_<action>` services)."""
