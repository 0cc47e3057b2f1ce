"""What a signed-in connection was opened with: a Django session or an API token (pure).

A socket lives as long as its credential: signing out ends the sockets of that session
(every tab, every gateway, and the tickets bought with it), a revoked API token ends the
sockets of the tickets it bought, and a password change or a deactivation ends them all
(`revocation` messages; `revalidation.py` catches what no message said, such as an
expired session). The secret stays in this process: messages and logs carry only `id`,
a digest that cannot be turned back into a cookie or a token.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final

SESSION: Final = "session"
TOKEN: Final = "token"
KINDS: Final = (SESSION, TOKEN)


def credential_id(kind: str, secret: str) -> str:
    """A stable, one-way name for a credential (`s:…` for sessions, `t:…` for tokens)."""
    digest = hashlib.sha256(f"realtime.credential:{kind}:{secret}".encode()).hexdigest()
    return f"{kind[0]}:{digest[:24]}"


@dataclass(frozen=True, slots=True)
class Credential:
    kind: str
    secret: str = field(repr=False)

    @property
    def id(self) -> str:
        return credential_id(self.kind, self.secret)

    def encode(self) -> str:
        return f"{self.kind}:{self.secret}"

    @classmethod
    def decode(cls, text: object) -> Credential | None:
        """`kind:secret` (as `encode` wrote it) or None for anything else."""
        if not isinstance(text, str):
            return None
        kind, _, secret = text.partition(":")
        return cls(kind, secret) if kind in KINDS and secret else None
