"""Bearer API keys: configured keys or their SHA-256 hashes, compared in constant time.

Keys come from ``RLJUDGE_API_KEYS`` (comma-separated) and/or ``RLJUDGE_API_KEYS_FILE`` (one per
line, e.g. a mounted Secret). An entry ``sha256:<hex>`` stores only the hash of a key. With no keys
configured every request is allowed. Keys are never logged: callers are identified by the first
8 hex digits of their key's hash.
"""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

from .settings import Settings


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class KeyRing:
    def __init__(self, entries: list[str]) -> None:
        self._hashes = [
            entry.removeprefix("sha256:").lower() if entry.startswith("sha256:") else _hash(entry) for entry in entries
        ]

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        entries = list(settings.api_keys)
        if settings.api_keys_file:
            lines = Path(settings.api_keys_file).read_text().splitlines()
            entries += [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        return cls(entries)

    @property
    def enabled(self) -> bool:
        return bool(self._hashes)

    def identify(self, key: str) -> str | None:
        """The caller's id (a hash prefix) when ``key`` is valid, else None."""
        digest = _hash(key)
        match = False
        for known in self._hashes:  # compare against every entry: no early exit, constant time
            match |= hmac.compare_digest(digest, known)
        return digest[:8] if match else None
