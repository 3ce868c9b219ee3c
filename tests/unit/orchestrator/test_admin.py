"""`videoedit-admin` on the job store the environment names (a SQLite file here; the system test
test_api_keys runs it on PostgreSQL against live orchestrators): a created key authenticates, a
listing never shows a secret or hash, revoking by tenant and by id, quotas and input roots kept
apart, and bad arguments exit 2 with one line saying why."""

from __future__ import annotations

import pytest

from orchestrator.admin import main
from orchestrator.api.security import KeyAuthenticator
from orchestrator.config import Settings
from orchestrator.jobs.store import open_store
from orchestrator.jobs.tenants import TenantSettings
from orchestrator.jobs.webhooks import TenantSecrets
from videoedit.v1.auth import api_key_hash


@pytest.fixture
def env(tmp_path, monkeypatch):
    """The orchestrators' environment: the SQLite store in the output root."""
    (tmp_path / "media" / "acme").mkdir(parents=True)
    for name in ("VIDEOEDIT_JOB_DB", "VIDEOEDIT_AUTH_TOKEN", "VIDEOEDIT_UPLOAD_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VIDEOEDIT_INPUT_ROOTS", str(tmp_path / "media"))
    monkeypatch.setenv("UR_EDIT_OUTPUT_DIR", str(tmp_path / "outputs"))
    return tmp_path


@pytest.fixture
def store(env):
    """The store the orchestrator would open with this environment."""
    opened = open_store(Settings.from_env())
    yield opened
    opened.close()


def admin(capsys, *argv: str) -> tuple[int, str, str]:
    """Runs videoedit-admin: (exit status, stdout, stderr)."""
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def create(capsys, tenant: str, role: str = "user") -> str:
    code, out, err = admin(capsys, "keys", "create", "--tenant", tenant, "--role", role)
    assert code == 0 and "shown only this once" in err
    return out.strip()


def call(store, key: str):
    return KeyAuthenticator(store, None, None).caller((("authorization", f"Bearer {key}"),))


def test_a_created_key_authenticates_as_its_tenant_and_role(capsys, store):
    user, admin_key = create(capsys, "acme"), create(capsys, "ops", "admin")
    assert call(store, user).tenant == "acme" and not call(store, user).admin
    assert call(store, admin_key).tenant == "ops" and call(store, admin_key).admin
    assert user not in capsys.readouterr().err  # the key goes to stdout only


def test_the_listing_never_shows_a_secret_or_hash(capsys, store):
    keys = [create(capsys, "acme"), create(capsys, "beta", "admin")]
    code, out, _ = admin(capsys, "keys", "list")
    assert code == 0
    for key in keys:
        key_id = key.split("_")[1]
        line = next(line for line in out.splitlines() if line.startswith(key_id))
        assert key.split("_", 2)[2] not in out and api_key_hash(key) not in out  # the secret
        assert line.split()[1:3] in (["acme", "user"], ["beta", "admin"])
    code, out, _ = admin(capsys, "keys", "list", "--tenant", "beta")
    assert "beta" in out and "acme" not in out


def test_revoking_by_id_and_by_tenant(capsys, store):
    first, second, other = create(capsys, "acme"), create(capsys, "acme"), create(capsys, "beta")
    assert admin(capsys, "keys", "revoke", "--key-id", first.split("_")[1])[1] == "revoked 1 key\n"
    assert call(store, first) is None and call(store, second) is not None
    assert admin(capsys, "keys", "revoke", "--tenant", "acme")[1] == "revoked 1 key\n"
    assert call(store, second) is None and call(store, other) is not None
    assert admin(capsys, "keys", "revoke", "--tenant", "acme")[1] == "revoked 0 keys\n"
    code, out, _ = admin(capsys, "keys", "list", "--tenant", "acme")
    assert [line.split()[-1] for line in out.splitlines()[1:]] == ["UTC", "UTC"]  # both revoked, when


def test_quotas_and_input_roots_are_set_apart(capsys, store, env):
    assert admin(capsys, "quota", "set", "--tenant", "acme", "--max-queued", "5", "--max-running", "2")[0] == 0
    assert admin(capsys, "tenant", "set", "--tenant", "acme", "--input-root", str(env / "media" / "acme"))[0] == 0
    assert (
        admin(capsys, "quota", "set", "--tenant", "acme", "--max-video-seconds", "90", "--max-queued", "none")[0] == 0
    )
    expected = TenantSettings("acme", None, 2, 90.0, ((env / "media" / "acme").resolve(),))
    assert store.tenant_settings("acme") == expected
    code, out, _ = admin(capsys, "tenants", "list")
    assert code == 0 and out.splitlines()[1].split() == ["acme", "-", "2", "90", str(expected.input_roots[0])]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (("keys", "create", "--tenant", "Not A Tenant"), "tenant: 'Not A Tenant' must be"),
        (("keys", "create", "--tenant", "acme", "--role", "root"), "invalid choice: 'root'"),
        (("keys", "revoke"), "one of the arguments --tenant --key-id is required"),
        (("quota", "set", "--tenant", "acme"), "give --max-queued, --max-running or --max-video-seconds"),
        (("quota", "set", "--tenant", "acme", "--max-running", "-1"), "--max-running '-1' must be at least 0"),
        (("quota", "set", "--tenant", "acme", "--max-queued", "lots"), "--max-queued 'lots' is not a number"),
        (("tenant", "set", "--tenant", "acme", "--input-root", "/"), "/ lies outside the input roots"),
        (("tenant", "set", "--tenant", "acme", "--input-root", "/no/such/dir"), "is not a directory"),
    ],
)
def test_bad_arguments_exit_2_saying_why(capsys, store, argv, says):
    code, out, err = admin(capsys, *argv)
    assert code == 2 and says in err and "Traceback" not in err and out == ""


def test_a_bad_environment_exits_2_saying_why(capsys, env, monkeypatch):
    monkeypatch.setenv("VIDEOEDIT_JOB_DB", "mysql://db/jobs")
    code, _, err = admin(capsys, "keys", "list")
    assert code == 2 and "VIDEOEDIT_JOB_DB mysql://... is not supported" in err


def test_a_tenants_webhook_key_is_printed_for_its_receiver(capsys, store, monkeypatch):
    code, _, err = admin(capsys, "webhook-secret", "--tenant", "acme")
    assert code == 2 and "VIDEOEDIT_WEBHOOK_SECRET is not set" in err
    monkeypatch.setenv("VIDEOEDIT_WEBHOOK_SECRET", "master")
    code, out, _ = admin(capsys, "webhook-secret", "--tenant", "acme")
    assert code == 0 and out.strip().encode() == TenantSecrets(b"master").secret_for("acme")
    assert "master" not in out
