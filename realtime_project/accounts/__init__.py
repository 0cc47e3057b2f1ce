"""Site accounts: django-allauth under /accounts/, Sign-In with Ethereum, API tokens."""
