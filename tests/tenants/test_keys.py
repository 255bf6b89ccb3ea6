"""The key file: what it grants, and one line naming the problem for every way it can be wrong."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from src.tenants.keys import KeyFileError, Rate, build_key_ring, read_key_file


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def write_keys(path: Path, entries: str) -> Path:
    path.write_text(f"keys:\n{entries}")
    return path


KEY_A = f"""  - id: team-a
    sha256: {sha("secret-a")}
    models: [sentiment]
    scopes: [predict]
    rate: 20
    burst: 20
"""
KEY_B = f"""  - id: team-b
    sha256: {sha("secret-b")}
    models: ["*"]
    scopes: [predict, feedback, read]
    feedback_rate: 2
"""


def test_keys_are_found_by_their_digest_with_their_rights(tmp_path: Path) -> None:
    ring = build_key_ring(None, None, write_keys(tmp_path / "keys.yaml", KEY_A + KEY_B))
    assert ring.enforced
    a, b = ring.find("secret-a"), ring.find("secret-b")
    assert a is not None
    assert b is not None
    assert (a.id, a.scopes, a.models, a.rate) == (
        "team-a",
        frozenset({"predict"}),
        frozenset({"sentiment"}),
        Rate(20, 20),
    )
    assert a.allows_model("sentiment")
    assert not a.allows_model("spam")
    assert b.allows_model("anything")
    assert b.models is None
    assert b.rate is None
    assert b.rate_for("feedback") == Rate(2, 2)
    assert ring.find("secret-c") is None
    assert ring.find(sha("secret-a")) is None  # the digest is not the key
    assert ring.ids == ["team-a", "team-b"]


def test_the_settings_keys_keep_their_rights() -> None:
    ring = build_key_ring("k1, k2", "admin", None)
    assert ring.enforced
    k1, admin = ring.find("k1"), ring.find("admin")
    assert k1 is not None
    assert admin is not None
    assert (k1.id, k1.scopes, k1.models) == ("api-key-1", frozenset({"predict", "feedback", "read"}), None)
    assert (admin.id, admin.scopes) == ("admin-key-1", frozenset({"admin"}))
    assert not build_key_ring(None, "admin", None).enforced  # admin keys alone leave predictions open


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("keys: [", "not valid YAML at line"),
        ("- a\n- b\n", "one field, `keys`"),
        ("keys:\n  - nope\n", "key 1: must be a mapping"),
        ("keys:\n  - {id: 'a b', sha256: x}\n", "key 1: `id` must be"),
        ("keys:\n  - {id: a, sha256: abc, models: ['*'], scopes: [predict]}\n", "key 1 (a): `sha256` must be"),
        (f"keys:\n  - {{id: a, sha256: {sha('k')}, models: ['*'], scopes: [write]}}\n", "`scopes` must name"),
        (f"keys:\n  - {{id: a, sha256: {sha('k')}, models: [], scopes: [read]}}\n", "`models` must name"),
        (f"keys:\n  - {{id: a, sha256: {sha('k')}, models: ['*'], scopes: [read], rate: 0}}\n", "`rate` must be"),
        (f"keys:\n  - {{id: a, sha256: {sha('k')}, models: ['*'], scopes: [read], burst: 5}}\n", "`burst` without"),
        (
            f"keys:\n  - {{id: a, sha256: {sha('k')}, models: ['*'], scopes: [read], rate: .inf}}\n",
            "not finite at keys[0].rate",
        ),
        (f"keys:\n  - {{id: a, sha256: {sha('k')}, models: ['*'], scopes: [read], role: x}}\n", "unknown field 'role'"),
        (f"keys:\n  - &k {{id: a, sha256: {sha('k')}, models: ['*'], scopes: [read]}}\n  - *k\n", "uses a YAML alias"),
        (
            f"keys:\n  - {{id: a, sha256: {sha('k')}, models: ['*'], scopes: [read]}}\n"
            f"  - {{id: a, sha256: {sha('j')}, models: ['*'], scopes: [read]}}\n",
            "id 'a' is used twice",
        ),
        (
            f"keys:\n  - {{id: a, sha256: {sha('k')}, models: ['*'], scopes: [read]}}\n"
            f"  - {{id: b, sha256: {sha('k')}, models: ['*'], scopes: [read]}}\n",
            "the same sha256 as 'a'",
        ),
    ],
)
def test_a_bad_file_is_one_line_naming_the_problem(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text(content)
    with pytest.raises(KeyFileError, match=re.escape(message)) as caught:
        read_key_file(path)
    assert "\n" not in str(caught.value)
    assert str(path) in str(caught.value)


def test_a_missing_or_huge_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot be read"):
        read_key_file(tmp_path / "nowhere.yaml")
    huge = tmp_path / "huge.yaml"
    huge.write_bytes(b"#" * 1_000_001)
    with pytest.raises(KeyFileError, match="is over 1000000 bytes"):
        read_key_file(huge)


def test_a_file_key_may_not_repeat_a_settings_key(tmp_path: Path) -> None:
    path = write_keys(tmp_path / "keys.yaml", KEY_A)
    with pytest.raises(KeyFileError, match="also one of API_KEYS"):
        build_key_ring("secret-a", None, path)
