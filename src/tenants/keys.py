"""Who a request's API key is: tenants, their scopes, models and rates, from API_KEYS_FILE and the
API_KEYS / ADMIN_API_KEYS settings.

The key file is YAML (a mounted Secret), holding only each key's SHA-256, never the key:

    keys:
      - id: support-team            # in logs, metrics and audit records
        sha256: <64 hex digits>     # sha256 of the key the client sends in X-API-Key
        models: [support]           # or ["*"]
        scopes: [predict, feedback] # predict, feedback, read, admin
        rate: 50                    # requests per second, across the pod's workers (optional)
        burst: 100                  # requests allowed at once above the rate (default: the rate)
        feedback_rate: 1            # corrections per second (optional; default: the rate)

A key is looked up by the SHA-256 of what the client sent, so the lookup's time says nothing about
how close a wrong key came. API_KEYS are keys with every model and the scopes predict, feedback
and read (what they opened before the file existed); ADMIN_API_KEYS have admin alone.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from src.documents import DocumentError, read_file, read_yaml

SCOPES = ("predict", "feedback", "read", "admin")
ANONYMOUS = "anonymous"  # the key id of requests made with keys off, in feedback tokens and corrections
ALL_MODELS = "*"
KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
MAX_KEY_FILE_BYTES = 1_000_000
MAX_KEYS = 10_000
_KEY_HASH = hashlib.sha256()
_FIELDS = {"id", "sha256", "models", "scopes", "rate", "burst", "feedback_rate"}


class KeyFileError(ValueError):
    """A key file that cannot be used; the message is one line naming the file, the key and the field."""


@dataclass(frozen=True)
class Rate:
    """Requests per second and the burst allowed above it."""

    per_second: float
    burst: float


@dataclass(frozen=True)
class Tenant:
    """One key's identity and rights; `models` None means every model."""

    id: str
    scopes: frozenset[str]
    models: frozenset[str] | None = None
    rate: Rate | None = None
    feedback_rate: Rate | None = None

    def allows_model(self, name: str) -> bool:
        """Whether this key may use model `name`."""
        return self.models is None or name in self.models

    def rate_for(self, scope: str) -> Rate | None:
        """The rate that a request of `scope` counts against (corrections have their own)."""
        return self.feedback_rate if scope == "feedback" else self.rate

    def models_text(self) -> str:
        """Its models for a message: `every model` or the names."""
        return "every model" if self.models is None else ", ".join(sorted(self.models)) or "none"


@dataclass(frozen=True)
class KeyRing:
    """Every accepted key by its SHA-256; `enforced` when requests other than admin ones need a key."""

    tenants: Mapping[bytes, Tenant] = field(default_factory=dict)
    enforced: bool = False

    def find(self, key: str) -> Tenant | None:
        """The tenant of a key as sent, or None."""
        digest = _KEY_HASH.copy()  # a copy: `hashlib.sha256()` looks the digest up in OpenSSL at every call
        digest.update(key.encode())
        return self.tenants.get(digest.digest())

    @property
    def ids(self) -> list[str]:
        """The key ids, sorted (the only values the metrics' `key` label takes)."""
        return sorted({tenant.id for tenant in self.tenants.values()})

    def has_scope(self, scope: str) -> bool:
        """Whether any key has `scope`."""
        return any(scope in tenant.scopes for tenant in self.tenants.values())


def _split(keys: str | None) -> list[str]:
    return [key.strip() for key in (keys or "").split(",") if key.strip()]


def setting_tenants(api_keys: str | None, admin_api_keys: str | None) -> dict[bytes, Tenant]:
    """API_KEYS and ADMIN_API_KEYS as tenants `api-key-N` and `admin-key-N` (N from 1, in order)."""
    tenants: dict[bytes, Tenant] = {}
    for prefix, keys, scopes in (
        ("api-key", api_keys, frozenset({"predict", "feedback", "read"})),
        ("admin-key", admin_api_keys, frozenset({"admin"})),
    ):
        for number, key in enumerate(_split(keys), start=1):
            digest = hashlib.sha256(key.encode()).digest()
            known = tenants.get(digest)
            if known is not None:  # the same key in both settings: both rights, under the first id
                tenants[digest] = Tenant(known.id, known.scopes | scopes)
            else:
                tenants[digest] = Tenant(f"{prefix}-{number}", scopes)
    return tenants


def build_key_ring(api_keys: str | None, admin_api_keys: str | None, key_file: Path | None) -> KeyRing:
    """Every key: the settings' and the file's (KeyFileError for a file that cannot be used)."""
    tenants = setting_tenants(api_keys, admin_api_keys)
    if key_file is not None:
        for digest, tenant in read_key_file(key_file).items():
            if digest in tenants:
                raise KeyFileError(f"{key_file}: key {tenant.id!r} is also one of API_KEYS / ADMIN_API_KEYS")
            tenants[digest] = tenant
    return KeyRing(tenants, enforced=bool(_split(api_keys)) or key_file is not None)


def read_key_file(path: Path) -> dict[bytes, Tenant]:
    """The tenants of a key file; KeyFileError naming the file and what is wrong."""
    try:
        document = read_yaml(read_file(path, MAX_KEY_FILE_BYTES, str(path)), str(path), max_bytes=MAX_KEY_FILE_BYTES)
    except DocumentError as error:
        raise KeyFileError(error.message) from None
    if not isinstance(document, dict) or set(document) != {"keys"} or not isinstance(document["keys"], list):
        raise KeyFileError(f"{path}: must be a mapping with one field, `keys`, a list of keys")
    entries: list[Any] = document["keys"]
    if len(entries) > MAX_KEYS:
        raise KeyFileError(f"{path}: {len(entries)} keys; at most {MAX_KEYS}")
    tenants: dict[bytes, Tenant] = {}
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        digest, tenant = _tenant(entry, f"{path}: key {number}")
        if tenant.id in seen:
            raise KeyFileError(f"{path}: key {number}: id {tenant.id!r} is used twice")
        if digest in tenants:
            raise KeyFileError(f"{path}: key {number} ({tenant.id}): the same sha256 as {tenants[digest].id!r}")
        seen.add(tenant.id)
        tenants[digest] = tenant
    return tenants


def _tenant(entry: object, where: str) -> tuple[bytes, Tenant]:
    if not isinstance(entry, dict):
        raise KeyFileError(f"{where}: must be a mapping (id, sha256, models, scopes, ...)")
    unknown = sorted(str(name) for name in set(entry) - _FIELDS)
    if unknown:
        raise KeyFileError(f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(sorted(_FIELDS))})")
    key_id = entry.get("id")
    if not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id):
        raise KeyFileError(f"{where}: `id` must be 1-64 letters, digits, `._-` (starting with a letter or digit)")
    where = f"{where} ({key_id})"
    digest = entry.get("sha256")
    if not isinstance(digest, str) or not _SHA256.fullmatch(digest.lower()):
        raise KeyFileError(f"{where}: `sha256` must be the key's SHA-256, 64 hex digits")
    scopes = _names(entry.get("scopes"), where, "scopes")
    wrong = sorted(scopes - set(SCOPES))
    if wrong or not scopes:
        raise KeyFileError(f"{where}: `scopes` must name at least one of {', '.join(SCOPES)} (not {wrong})")
    models = _names(entry.get("models"), where, "models")
    if not models:
        raise KeyFileError(f'{where}: `models` must name at least one model, or be ["*"] for every model')
    rate = _rate(entry, "rate", "burst", where)
    feedback = _rate(entry, "feedback_rate", None, where) if "feedback_rate" in entry else rate
    tenant = Tenant(key_id, frozenset(scopes), None if ALL_MODELS in models else frozenset(models), rate, feedback)
    return bytes.fromhex(digest), tenant


def _names(value: object, where: str, name: str) -> set[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and 0 < len(item) <= 64 for item in value):
        raise KeyFileError(f"{where}: `{name}` must be a list of names")
    return set(value)


def _number(value: object, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise KeyFileError(f"{where}: `{name}` must be a positive number")
    return float(value)


def _rate(entry: Mapping[str, Any], name: str, burst_name: str | None, where: str) -> Rate | None:
    if burst_name is not None and burst_name in entry and name not in entry:
        raise KeyFileError(f"{where}: `{burst_name}` without `{name}`")
    if name not in entry:
        return None
    per_second = _number(entry[name], where, name)
    burst = _number(entry[burst_name], where, burst_name) if burst_name and burst_name in entry else per_second
    return Rate(per_second, max(burst, 1.0))
