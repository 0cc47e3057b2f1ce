"""Site accounts: django-allauth under /accounts/, Sign-In with Ethereum, API tokens.

Sessions end everywhere at once: signing out, a password change, a deactivation or a
revoked API token closes the user's WebSockets on every gateway (`revocation.py`).
"""
