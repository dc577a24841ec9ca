"""Who a user is, without knowing anything about them: a personal key, and the owner id derived from it.

The page gives each visitor a random key (:func:`new_key`) that lives in the page's link, so that a reload
or a bookmark brings back the same user. What is stored on the server (a model card's ``owner``, the folder
of someone's drawings) is never the key but :func:`owner_of` it, a one-way hash: whoever reads the files
learns no key to act as their owner with, and nothing personal is kept at all.
"""

from __future__ import annotations

import hashlib
import re
import secrets

KEY_BYTES = 16  # 128 random bits: not guessable
_KEY = re.compile(r"[A-Za-z0-9_-]{22,64}")  # token_urlsafe(16) is 22 characters
OWNER_CHARACTERS = 16  # of the hash's hex digits: 64 bits, ample to tell a server's users apart


def new_key() -> str:
    """A fresh personal key: random, URL-safe, 22 characters."""
    return secrets.token_urlsafe(KEY_BYTES)


def is_key(value) -> bool:
    """True for a string that can be a personal key (what :func:`new_key` makes, or a longer one like it)."""
    return isinstance(value, str) and _KEY.fullmatch(value) is not None


def owner_of(key: str) -> str:
    """The owner id stored for the user holding ``key``: 16 hex digits of its SHA-256; ValueError for a non-key."""
    if not is_key(key):
        raise ValueError(f"a personal key is 22-64 letters, digits, '-' or '_', got {key!r:.40}")
    return hashlib.sha256(f"mnist-core owner:{key}".encode()).hexdigest()[:OWNER_CHARACTERS]


def is_owner(value) -> bool:
    """True for a string that is an owner id as :func:`owner_of` makes them."""
    return isinstance(value, str) and re.fullmatch(rf"[0-9a-f]{{{OWNER_CHARACTERS}}}", value) is not None
