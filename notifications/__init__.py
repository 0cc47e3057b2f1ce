"""Notifications: persistent per-user notifications, read state, announcements."""
