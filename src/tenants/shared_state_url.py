"""SHARED_STATE_URL: what a Redis URL must say, checked when the settings are read (a bad one stops the start)."""

from __future__ import annotations

from urllib.parse import urlsplit

SCHEMES = ("redis", "rediss")


def check_url(url: str) -> str:
    """The URL if it names a Redis (`redis://[:password@]host[:port][/db]`, `rediss://` with TLS), else ValueError."""
    parts = urlsplit(url.strip())
    if parts.scheme not in SCHEMES:
        raise ValueError(f"the scheme must be redis:// or rediss:// (TLS), not {parts.scheme or 'none'!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port must be a number from 1 to 65535") from None
    if not parts.hostname:
        raise ValueError("a host is needed, as in redis://host:6379/0")
    if port == 0:
        raise ValueError("the port must be a number from 1 to 65535")
    db = parts.path.strip("/")
    if db and not db.isdigit():
        raise ValueError(f"the path is the database number, not {db!r}")
    if parts.query or parts.fragment:
        raise ValueError("no query or fragment: name a password file with SHARED_STATE_PASSWORD_FILE")
    return url.strip()


def shown_url(url: str) -> str:
    """The URL without its password, for the log."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}{parts.path}"
