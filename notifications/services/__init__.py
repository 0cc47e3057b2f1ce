"""Writes of the notifications app (sends, read state, digests, announcements)."""
