"""Production safety without a database: refusal of development secrets, keys per purpose, roles, masking."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from topup import keys, safety
from topup.config import DEV_ADMIN_TOKEN, DEV_SECRET_KEY, Settings
from topup.domain.roles import Actor, Role, Via
from topup.entrypoints.cli import app
from topup.services import audit

STRONG = "k" * 40
STRONG_TOKEN = "t" * 40


def test_loopback_is_recognised_and_every_interface_is_not() -> None:
    for host in ("127.0.0.1", "127.8.9.1", "localhost", "::1", "[::1]"):
        assert safety.is_loopback(host), host
    for host in ("0.0.0.0", "::", "", "10.0.0.5", "192.168.1.2", "example.com", "2001:db8::1"):
        assert not safety.is_loopback(host), host


def test_defaults_and_short_secrets_are_refused_off_loopback_with_one_line_naming_each_setting() -> None:
    line = safety.refusal(Settings(), "0.0.0.0")
    assert line is not None and "\n" not in line
    assert "TOPUP_ADMIN_TOKEN (the development default)" in line
    assert "TOPUP_SECRET_KEY (the development default)" in line
    assert "topup keys new" in line
    short = safety.refusal(Settings(admin_token=STRONG_TOKEN, secret_key="x" * 31), "10.1.2.3")
    assert short is not None and "TOPUP_SECRET_KEY (shorter than 32 characters)" in short
    assert "TOPUP_ADMIN_TOKEN" not in short
    weak_session = Settings(admin_token=STRONG_TOKEN, secret_key=STRONG, session_secret="short")
    assert "TOPUP_SESSION_SECRET" in (safety.refusal(weak_session, "0.0.0.0") or "")
    weak_sandbox = Settings(admin_token=STRONG_TOKEN, secret_key=STRONG, sandbox_secret="short")
    assert "TOPUP_SANDBOX_SECRET" in (safety.refusal(weak_sandbox, "0.0.0.0") or "")
    assert safety.refusal(Settings(admin_token=STRONG_TOKEN, secret_key=STRONG), "0.0.0.0") is None


def test_loopback_starts_with_the_development_defaults() -> None:
    s = Settings()
    assert s.admin_token == DEV_ADMIN_TOKEN and s.secret_key == DEV_SECRET_KEY
    assert safety.refusal(s, "127.0.0.1") is None
    assert safety.refusal(s, "localhost") is None


def test_a_worker_refuses_the_default_master_key_only_against_a_remote_database() -> None:
    assert safety.worker_refusal(Settings(database_url="sqlite:///x.db")) is None
    assert safety.worker_refusal(Settings(database_url="postgresql://u@127.0.0.1:5432/db")) is None
    remote = safety.worker_refusal(Settings(database_url="postgresql://u@db.internal:5432/db"))
    assert remote is not None and "TOPUP_SECRET_KEY (the development default)" in remote
    assert "TOPUP_ADMIN_TOKEN" not in remote  # a worker does not use it
    ok = Settings(database_url="postgresql://u@db.internal/db", secret_key=STRONG)
    assert safety.worker_refusal(ok) is None


def test_serve_on_every_interface_with_no_settings_explains_what_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("TOPUP_ADMIN_TOKEN", "TOPUP_SECRET_KEY", "TOPUP_SECRET_KEY_FILE", "TOPUP_SESSION_SECRET"):
        monkeypatch.delenv(name, raising=False)
    r = CliRunner().invoke(app, ["serve", "--host", "0.0.0.0", "--port", "1"])
    assert r.exit_code == 2
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("topup: refusing to listen on 0.0.0.0"), r.output
    assert "TOPUP_ADMIN_TOKEN" in lines[0] and "TOPUP_SECRET_KEY" in lines[0]
    demo = CliRunner().invoke(app, ["demo", "--host", "0.0.0.0", "--port", "1", "--sim-port", "1"])
    assert demo.exit_code == 2 and "refusing to listen" in demo.output


def test_the_master_key_may_come_from_a_file(tmp_path: Path) -> None:
    f = tmp_path / "master.key"
    f.write_text(STRONG + "\n")
    assert Settings(secret_key_file=str(f)).secret_key == STRONG
    with pytest.raises(ValueError, match="TOPUP_SECRET_KEY_FILE"):
        Settings(secret_key_file=str(tmp_path / "missing"))
    r = CliRunner().invoke(app, ["keys", "rotate"], env={"TOPUP_SECRET_KEY_FILE": str(tmp_path / "missing")})
    assert (
        r.exit_code == 1 and "TOPUP_SECRET_KEY_FILE: cannot read" in r.output and "Traceback" not in r.output
    )


def test_keys_new_prints_fresh_long_values() -> None:
    outs = [CliRunner().invoke(app, ["keys", "new"]).output for _ in range(2)]
    assert outs[0] != outs[1]
    values = dict(line.split("=", 1) for line in outs[0].splitlines())
    assert set(values) >= {"TOPUP_SECRET_KEY", "TOPUP_ADMIN_TOKEN"}
    assert all(len(v) >= safety.MIN_SECRET_LEN for v in values.values())
    s = Settings(secret_key=values["TOPUP_SECRET_KEY"], admin_token=values["TOPUP_ADMIN_TOKEN"])
    assert safety.refusal(s, "0.0.0.0") is None


def test_keys_per_purpose_come_from_the_master_key_not_the_admin_token() -> None:
    from topup.entrypoints.websession import session_key
    from topup.services.payments import sandbox_secret

    a = Settings(admin_token="a" * 40, secret_key=STRONG)
    b = Settings(admin_token="b" * 40, secret_key=STRONG)
    assert session_key(a) == session_key(b)
    assert sandbox_secret(a.secret_key, None) == sandbox_secret(b.secret_key, None)
    assert session_key(a)[-1] != sandbox_secret(a.secret_key, None) != STRONG
    assert keys.derive(STRONG, keys.SESSIONS) == keys.derive(STRONG, keys.SESSIONS)
    assert keys.derive(STRONG, keys.SESSIONS) != keys.derive(STRONG, keys.SANDBOX)
    assert keys.derive(STRONG, keys.SESSIONS) != keys.derive("m" * 40, keys.SESSIONS)
    # Explicit settings still win; an old master key still verifies sessions during a rotation.
    assert session_key(Settings(session_secret="s" * 40)) == ["s" * 40]
    rotated = Settings(secret_key="n" * 40, old_secret_keys=STRONG)
    assert session_key(rotated) == [session_key(a)[0], session_key(Settings(secret_key="n" * 40))[0]]


def test_roles_include_the_ones_below() -> None:
    assert Role.ADMIN.allows(Role.OPERATOR) and Role.ADMIN.allows(Role.VIEWER)
    assert Role.OPERATOR.allows(Role.VIEWER) and not Role.OPERATOR.allows(Role.ADMIN)
    assert not Role.VIEWER.allows(Role.OPERATOR)
    assert Actor("x", Role.OPERATOR, Via.API).can(Role.OPERATOR)


def test_audit_values_mask_secrets_at_any_depth() -> None:
    out = audit.masked(
        {
            "name": "Shop",
            "secret": "merchant-secret-0001",
            "has_password": True,
            "credentials": {"api_key": "abcdefghijkl", "username": "bob", "secret": "****01"},
            "nested": [{"token": "tgo_abc_verylongsecret"}],
        }
    )
    assert out["name"] == "Shop" and out["has_password"] is True
    assert out["secret"] == "****01"
    assert out["credentials"] == {"api_key": "****kl", "username": "bob", "secret": "****01"}
    assert out["nested"][0]["token"] == "****et"
    assert "merchant-secret-0001" not in str(out) and "abcdefghijkl" not in str(out)
    assert audit.changes({"a": 1, "b": 2}, {"a": 1, "b": 3, "c": 4}) == {"b": [2, 3], "c": [None, 4]}
