"""The job store's API keys, on SQLite and PostgreSQL: a key is found by its id with its hash
while active, listed without its hash, revoked by id or by tenant (once), and `has_keys` counts
revoked keys too (revoking every key must not reopen the service)."""

from __future__ import annotations

import dataclasses
import time

import pytest

from orchestrator.jobs.store import SqliteJobStore
from orchestrator.jobs.store.postgres import PostgresJobStore
from orchestrator.jobs.tenants import ApiKey


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request, tmp_path):
    if request.param == "postgresql":
        opened = PostgresJobStore(request.getfixturevalue("postgres").database("keys"))
    else:
        opened = SqliteJobStore(tmp_path / "keys.sqlite3")
    yield opened
    opened.close()


def make(store, key_id: str, tenant: str, role: str = "user") -> ApiKey:
    key = ApiKey(key_id, tenant, role, created_at=time.time())
    store.add_key(key, f"hash-of-{key_id}")
    return key


def test_an_active_key_is_found_with_its_hash_and_listed_without_it(store):
    assert not store.has_keys() and store.active_key("0" * 16) is None
    user, admin = make(store, "a" * 16, "acme"), make(store, "b" * 16, "zeta", "admin")
    assert store.has_keys()
    assert store.active_key(user.key_id) == (user, "hash-of-" + "a" * 16)
    assert store.active_key(admin.key_id)[0].caller.admin
    assert store.keys() == [user, admin]  # by tenant
    assert store.keys("zeta") == [admin] and store.keys("nobody") == []


def test_revoking_by_id_or_tenant_counts_each_key_once(store):
    a1, a2, b = make(store, "1" * 16, "acme"), make(store, "2" * 16, "acme"), make(store, "3" * 16, "beta")
    assert store.revoke_keys(key_id=a1.key_id) == 1
    assert store.active_key(a1.key_id) is None and store.active_key(a2.key_id) is not None
    assert store.revoke_keys(tenant="acme") == 1  # a2 only: a1 was revoked already
    assert store.revoke_keys(key_id=a1.key_id) == 0 and store.revoke_keys(tenant="nobody") == 0
    listed = {k.key_id: k for k in store.keys()}
    assert listed[a1.key_id].revoked_at is not None and listed[a2.key_id].revoked_at is not None
    assert listed[b.key_id] == b and store.active_key(b.key_id) is not None
    assert store.revoke_keys(tenant="beta") == 1
    assert store.has_keys()  # every key revoked: still not an open service
    with pytest.raises(ValueError, match="key_id or a tenant"):
        store.revoke_keys()


def test_revoked_at_is_the_database_clock_now(store):
    key = make(store, "c" * 16, "acme")
    before = time.time()
    store.revoke_keys(key_id=key.key_id)
    (listed,) = store.keys()
    assert listed == dataclasses.replace(key, revoked_at=listed.revoked_at)
    assert before - 5 < listed.revoked_at < time.time() + 5
