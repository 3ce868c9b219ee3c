"""Settings: the default input root is a folder of its own, and inputs, outputs and the job store
never overlap."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.config import Settings


def test_the_default_input_root_is_a_media_folder_not_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("VIDEOEDIT_INPUT_ROOTS", "UR_EDIT_OUTPUT_DIR", "VIDEOEDIT_JOB_DB", "VIDEOEDIT_UPLOAD_DIR"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings.from_env()
    assert settings.input_roots == (tmp_path.resolve() / "media",) and (tmp_path / "media").is_dir()
    assert settings.upload_path == tmp_path.resolve() / "media" / "uploads"
    assert settings.output_root == tmp_path.resolve() / "outputs"


@pytest.mark.parametrize(
    "inputs, outputs, job_db, says",
    [
        ("data", "data/outputs", None, "UR_EDIT_OUTPUT_DIR .* lies inside the input root"),
        ("data", "data", None, "UR_EDIT_OUTPUT_DIR .* lies inside the input root"),
        ("data/outputs/media", "data/outputs", None, "input root .* lies inside UR_EDIT_OUTPUT_DIR"),
        ("media", "outputs", "media/jobs.sqlite3", "SQLite job store .* lies inside the input root"),
    ],
)
def test_inputs_outputs_and_the_job_store_are_kept_apart(tmp_path, inputs, outputs, job_db, says):
    with pytest.raises(ValueError, match=says):
        Settings(
            input_roots=(Path("elsewhere"), tmp_path / inputs),
            output_root=tmp_path / outputs,
            job_db=str(tmp_path / job_db) if job_db else None,
            upload_dir=Path("elsewhere") / "uploads",
        )


def test_side_by_side_folders_and_a_postgresql_store_are_fine(tmp_path):
    Settings(input_roots=(tmp_path / "media",), output_root=tmp_path / "outputs")
    Settings(input_roots=(tmp_path / "media",), output_root=tmp_path / "outputs", job_db="postgresql://db/jobs")
