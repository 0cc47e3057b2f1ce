"""Writes of the alerts app (`<entity>_<action>` services)."""
