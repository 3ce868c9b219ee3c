"""`bash bench/gpu.sh` runs where no test can (a GPU, full-size weights); its Python half runs
here end to end with tiny models on the CPU, so a GPU session spends its minutes measuring, not
finding a typo. Every section the GPU report needs must come out."""

from __future__ import annotations

import json

from bench import gpu


def test_the_gpu_benchmark_runs_every_section_with_tiny_models(model_cache, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("VIDEOEDIT_CACHE_DIR", str(model_cache))
    results = gpu.main(["--random-weights", "tiny", "--device", "cpu", "--json", str(tmp_path / "gpu.json")])
    settings = [(r["what"], r["setting"]) for r in results["rows"]]
    work = gpu.Workload.for_weights("tiny")
    for steps in work.steps:
        for batch in gpu.BATCHES:
            assert ("Edit", f"{work.crop_side}px, {steps} steps, batch {batch}") in settings
    assert ("Edit", f"{work.crop_side}px, {work.steps[0]} steps, stock diffusers per crop") in settings
    for chunk in work.chunks:
        assert any(what == "Segment" and f"{chunk}-frame chunk" in s for what, s in settings)
    assert any(what == "Job" for what, _ in settings)
    assert all(r["items_per_s"] > 0 for r in results["rows"])
    assert set(results["job_stages_s"]) == {"extracting", "masking", "propagating", "editing", "smoothing", "saving"}
    assert json.loads((tmp_path / "gpu.json").read_text())["rows"] == results["rows"]
    assert "the stock pipeline per crop" in capsys.readouterr().out
