"""KeyAuthenticator on a real (SQLite) job store: who an API key, the auth token and the gateway
calling on behalf of a key are; what is refused (a wrong secret with a right id, a revoked key, a
malformed one, a wrong gateway token); open only while there is neither a token nor a key; and a
store that cannot answer makes the call UNAVAILABLE, not a way in."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from orchestrator.admin import issue_key
from orchestrator.api.security import CallerInterceptor, KeyAuthenticator, current_caller
from orchestrator.errors import Unavailable
from orchestrator.jobs.store import SqliteJobStore
from orchestrator.jobs.tenants import OWNER, Caller
from videoedit.v1.auth import new_api_key
from videoedit.v1.gateway import ADMIN_TOKEN_ID, on_behalf_metadata

TOKEN, GATEWAY = "the-auth-token", "the-gateway-token"


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.fixture
def store(tmp_path):
    opened = SqliteJobStore(tmp_path / "jobs.sqlite3")
    yield opened
    opened.close()


def keyed(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


def test_user_and_admin_keys_name_their_tenant_and_role(store):
    auth = KeyAuthenticator(store, None, GATEWAY)
    user_key, user = issue_key(store, "acme")
    admin_key, admin = issue_key(store, "ops", "admin")
    assert auth.caller(keyed(user_key)) == Caller("acme", admin=False, key_id=user.key_id)
    assert auth.caller(keyed(admin_key)) == Caller("ops", admin=True, key_id=admin.key_id)
    assert auth.caller((("authorization", f"bearer {user_key}".encode()),)).tenant == "acme"  # bytes, any case
    assert auth.mode() == "API keys"


def test_a_wrong_secret_a_malformed_key_or_none_is_refused(store):
    auth = KeyAuthenticator(store, None, GATEWAY)
    key, _ = issue_key(store, "acme")
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")  # the right id, another secret
    unknown, _ = new_api_key()  # well formed, never stored
    for metadata in (keyed(forged), keyed(unknown), keyed(key[:-1]), keyed("vek_nothing"), keyed(""), ()):
        assert auth.caller(metadata) is None, metadata
    assert auth.caller((("authorization", key),)) is None  # no Bearer scheme
    assert key not in auth.refusal and "videoedit-admin keys create" in auth.refusal
    assert "VIDEOEDIT_AUTH_TOKEN" in auth.refusal


def test_a_revoked_key_is_refused_on_the_next_call(store):
    auth = KeyAuthenticator(store, None, GATEWAY)
    key, stored = issue_key(store, "acme")
    other, _ = issue_key(store, "acme")
    assert auth.caller(keyed(key)) is not None  # looked up, and not remembered:
    assert store.revoke_keys(key_id=stored.key_id) == 1
    assert auth.caller(keyed(key)) is None
    assert auth.caller(keyed(other)) is not None
    store.revoke_keys(tenant="acme")
    assert auth.caller(keyed(other)) is None and auth.caller(()) is None  # all revoked: still closed


def test_the_auth_token_is_the_default_tenants_admin_beside_keys(store):
    auth = KeyAuthenticator(store, TOKEN, GATEWAY)
    assert auth.mode() == "token"
    assert auth.caller(keyed(TOKEN)) == OWNER
    assert auth.caller(keyed("not-the-token")) is None and auth.caller(()) is None
    key, _ = issue_key(store, "acme")
    assert auth.caller(keyed(TOKEN)) == OWNER and auth.caller(keyed(key)).tenant == "acme"
    assert auth.mode() == "API keys and token"


def test_the_gateway_calls_on_behalf_of_an_active_key_only(store):
    auth = KeyAuthenticator(store, TOKEN, GATEWAY)
    _, stored = issue_key(store, "acme")
    assert auth.caller(on_behalf_metadata(GATEWAY, stored.key_id)) == stored.caller
    assert auth.caller(on_behalf_metadata(GATEWAY, ADMIN_TOKEN_ID)) == OWNER
    assert auth.caller(on_behalf_metadata("a-wrong-gateway-token", stored.key_id)) is None
    assert auth.caller(on_behalf_metadata(GATEWAY, "0" * 16)) is None  # no such key
    store.revoke_keys(key_id=stored.key_id)
    assert auth.caller(on_behalf_metadata(GATEWAY, stored.key_id)) is None
    # Without a configured gateway token nobody can call on behalf of anyone.
    assert KeyAuthenticator(store, TOKEN, None).caller(on_behalf_metadata(GATEWAY, ADMIN_TOKEN_ID)) is None


def test_the_auth_token_holder_needs_an_auth_token_to_be_named_by_the_gateway(store):
    issue_key(store, "acme")  # not open
    auth = KeyAuthenticator(store, None, GATEWAY)
    assert auth.caller(on_behalf_metadata(GATEWAY, ADMIN_TOKEN_ID)) is None


def test_open_without_token_or_keys_until_the_first_key_is_made(store):
    auth = KeyAuthenticator(store, None, GATEWAY)
    assert auth.mode() == "no auth"
    assert auth.caller(()) == OWNER and auth.caller(keyed("anything")) == OWNER
    key, _ = issue_key(store, "acme")
    assert auth.caller(()) is None and auth.caller(keyed("anything")) is None
    assert auth.caller(keyed(key)).tenant == "acme"


class DownStore:
    """A store whose database cannot be reached."""

    def has_keys(self) -> bool:
        raise Unavailable("the job database cannot be reached; retry shortly")

    active_key = has_keys


async def call_through(authenticator: KeyAuthenticator, metadata=()) -> bytes:
    """One call of a method that answers who called, through a real grpc.aio server with the
    CallerInterceptor of `authenticator`."""

    async def who(_request: bytes, _context) -> bytes:
        caller = current_caller()
        return f"{caller.tenant}:{caller.admin}".encode()

    blocking = ThreadPoolExecutor(2)
    server = grpc.aio.server(interceptors=[CallerInterceptor(authenticator, blocking)])
    methods = {"Who": grpc.unary_unary_rpc_method_handler(who)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("test.Callers", methods),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            return await channel.unary_unary("/test.Callers/Who")(b"", metadata=metadata, timeout=10)
    finally:
        await server.stop(0)
        blocking.shutdown()


@pytest.mark.anyio
async def test_calls_run_as_their_caller_and_refusals_name_what_to_send(store):
    key, _ = issue_key(store, "acme")
    assert await call_through(KeyAuthenticator(store, None, None), keyed(key)) == b"acme:False"
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call_through(KeyAuthenticator(store, None, None), keyed(key + "x"))
    assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "videoedit-admin keys create" in refused.value.details() and key not in refused.value.details()


@pytest.mark.anyio
async def test_a_store_that_cannot_answer_makes_calls_unavailable_not_open():
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call_through(KeyAuthenticator(DownStore(), None, None))
    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE and "retry" in failed.value.details()
