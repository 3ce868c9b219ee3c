"""Who sees which job, and where a tenant's files go (jobs.tenants): job keys, admins naming
another tenant's job, and each caller's folders and roots as validation applies them."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import Settings
from orchestrator.errors import InvalidArgument, PermissionDenied
from orchestrator.jobs.tenants import OWNER, Caller, TenantPaths, TenantSettings, check_tenant
from orchestrator.jobs.validation import check_job_name, check_request
from orchestrator.request import VideoEditRequest, job_key

USER = Caller("acme", key_id="0123456789abcdef")
ADMIN = Caller("ops", admin=True)


def test_a_job_is_named_by_its_tenant_and_id():
    assert job_key("", "j1") == "j1"  # the default tenant's: every job made before tenants
    assert job_key("acme", "j1") == "acme/j1"
    request = VideoEditRequest(job_id="j1", input_video_path=Path("x"), mask_prompt="m", edit_prompt="e")
    assert request.key == "j1" and VideoEditRequest(**{**request.__dict__, "tenant": "acme"}).key == "acme/j1"


def test_a_user_names_its_own_jobs_and_an_admin_any_tenants():
    assert USER.key_of("j1") == "acme/j1" and ADMIN.key_of("j1") == "ops/j1"
    assert ADMIN.key_of("acme/j1") == "acme/j1" and ADMIN.key_of("/j1") == "j1"  # "/j1": the default tenant's
    assert OWNER.key_of("j1") == "j1"
    check_job_name("acme/j1", ADMIN)
    with pytest.raises(InvalidArgument, match="job_id"):
        check_job_name("other/j1", USER)  # not a user's to name: as malformed as any bad id
    with pytest.raises(InvalidArgument, match="job_id"):
        check_job_name("Bad Tenant/j1", ADMIN)
    assert USER.sees("acme") and not USER.sees("other") and not USER.sees("")
    assert ADMIN.sees("other") and USER.scope == "acme" and ADMIN.scope is None
    assert "0123456789abcdef" in str(USER) and "acme" in str(USER)


@pytest.mark.parametrize("name", ["", "Acme", "-a", "a/b", "a" * 64, "a.b", "é"])
def test_tenant_names_are_checked(name):
    with pytest.raises(InvalidArgument, match="tenant"):
        check_tenant(name)


def test_each_caller_reads_and_writes_where_its_tenant_may(tmp_path):
    media, shared = tmp_path / "media", tmp_path / "media" / "shared"
    shared.mkdir(parents=True)
    settings = Settings(input_roots=(media,), output_root=tmp_path / "out")
    own = TenantPaths.of(settings, OWNER)
    assert own.input_roots == (media,) and own.jobs_dir == own.output_root == settings.output_root
    user = TenantPaths.of(settings, USER, TenantSettings("acme", input_roots=(shared,)))
    assert user.upload_dir == settings.upload_path / "tenants" / "acme"
    assert user.input_roots == (user.upload_dir, shared)
    assert user.jobs_dir == user.output_root == settings.output_root / "tenants" / "acme"
    admin = TenantPaths.of(settings, ADMIN)
    assert admin.input_roots == (media,) and admin.output_root == settings.output_root
    assert admin.jobs_dir == settings.output_root / "tenants" / "ops"


def test_a_users_request_stays_in_its_folders(tmp_path):
    from clients.sample_clip import make_sample_clip

    media = tmp_path / "media"
    settings = Settings(input_roots=(media,), output_root=tmp_path / "out")
    paths = TenantPaths.of(settings, USER)
    mine = make_sample_clip(paths.upload_dir / "mine.mp4", frames=2, width=32, height=32)
    theirs = make_sample_clip(settings.upload_path / "tenants" / "other" / "theirs.mp4", frames=2, width=32, height=32)

    def request(**fields) -> VideoEditRequest:
        values = dict(job_id="j1", input_video_path=mine, mask_prompt="m", edit_prompt="e", tenant="acme")
        return VideoEditRequest(**{**values, **fields})

    checked = check_request(request(), settings, paths)
    assert checked.output_dir == settings.output_root / "tenants" / "acme" / "j1"
    with pytest.raises(PermissionDenied, match="outside the allowed input roots"):
        check_request(request(input_video_path=theirs), settings, paths)
    with pytest.raises(PermissionDenied, match="inside the output root"):
        check_request(request(output_dir=settings.output_root / "tenants" / "other" / "x"), settings, paths)
    assert check_request(request(input_video_path=theirs), settings).request.input_video_path == theirs  # admin
