"""Where the model weights come from: a directory, a hub id, Meta's sam3.pt, or tiny models.

Order: command-line flag, then the original worker's env vars (SAM3_MODEL_PATH,
INSTRUCT_PIX2PIX_MODEL_PATH). With neither, the default hub ids are used when
they are already in the local Hugging Face cache; otherwise (or with --tiny /
VIDEOEDIT_MODELS=tiny) tiny random-weight models are built and used, loudly.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEFAULT_SAM3 = "facebook/sam3"
DEFAULT_PIX2PIX = "timbrooks/instruct-pix2pix"
DEFAULT_CACHE_DIR = Path(os.environ.get("VIDEOEDIT_CACHE_DIR", Path.home() / ".cache" / "videoedit"))


class WeightsError(Exception):
    """The configured weights cannot be used; the message says what to do."""


@dataclass(frozen=True)
class ModelSource:
    path_or_id: str
    tiny: bool = False

    @property
    def revision(self) -> str:
        """The Hugging Face commit of these weights when known, else ''."""
        if self.tiny:
            return ""
        path = Path(self.path_or_id)
        if path.is_dir():  # a snapshot dir of the HF cache is named after its commit
            return path.name if path.parent.name == "snapshots" else ""
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(self.path_or_id, "config.json") or try_to_load_from_cache(
            self.path_or_id, "model_index.json"
        )
        return Path(cached).parent.name if isinstance(cached, str) else ""


def resolve_sources(
    sam3: str | None = None, pix2pix: str | None = None, tiny: bool = False, cache_dir: Path = DEFAULT_CACHE_DIR
) -> tuple[ModelSource, ModelSource]:
    """(SAM3 source, InstructPix2Pix source)."""
    mode = os.environ.get("VIDEOEDIT_MODELS", "auto")
    sam3 = sam3 or os.environ.get("SAM3_MODEL_PATH") or None
    pix2pix = pix2pix or os.environ.get("INSTRUCT_PIX2PIX_MODEL_PATH") or None
    if tiny or mode == "tiny":
        return _tiny(cache_dir, "--tiny / VIDEOEDIT_MODELS=tiny")
    if sam3 is None and pix2pix is None and mode != "hub":
        if not (_in_hf_cache(DEFAULT_SAM3, "config.json") and _in_hf_cache(DEFAULT_PIX2PIX, "model_index.json")):
            return _tiny(
                cache_dir,
                "no weights configured (SAM3_MODEL_PATH / INSTRUCT_PIX2PIX_MODEL_PATH unset "
                f"and {DEFAULT_SAM3}, {DEFAULT_PIX2PIX} not in the Hugging Face cache)",
            )
    return (
        ModelSource(_check_source(sam3 or DEFAULT_SAM3, "SAM3_MODEL_PATH", "config.json", cache_dir)),
        ModelSource(
            _check_source(pix2pix or DEFAULT_PIX2PIX, "INSTRUCT_PIX2PIX_MODEL_PATH", "model_index.json", cache_dir)
        ),
    )


def _tiny(cache_dir: Path, why: str) -> tuple[ModelSource, ModelSource]:
    from .backends.tiny import ensure_tiny_models  # imports torch; only when needed

    log.warning("using TINY RANDOM-WEIGHT models because %s: outputs are NOT meaningful", why)
    paths = ensure_tiny_models(cache_dir / "tiny")
    return ModelSource(str(paths.sam3), tiny=True), ModelSource(str(paths.instruct_pix2pix), tiny=True)


def _looks_like_path(value: str) -> bool:
    """Hub ids are `owner/name`; anything else (or anything that exists on disk) is a path."""
    is_hub_id = value.count("/") == 1 and not value.startswith((".", "/", "~"))
    return not is_hub_id or Path(value).expanduser().exists()


def _check_source(value: str, env_name: str, marker: str, cache_dir: Path) -> str:
    """A hub id passes as is; a local path must exist and hold a transformers/diffusers model."""
    if not _looks_like_path(value):
        return value
    path = Path(value).expanduser()
    if not path.exists():
        raise WeightsError(f"{env_name}={value}: no such file or directory")
    if path.is_file() and path.suffix in (".pt", ".pth", ".ckpt"):
        path = _beside_checkpoint(path, env_name, marker, cache_dir)
    if not (path / marker).is_file():
        raise WeightsError(
            f"{env_name}={value}: {marker} is missing, so this is not a saved "
            f"{'transformers' if marker == 'config.json' else 'diffusers'} model directory"
        )
    return str(path.resolve())


def _beside_checkpoint(checkpoint: Path, env_name: str, marker: str, cache_dir: Path) -> Path:
    """The transformers/diffusers model for a raw checkpoint: saved beside it, or converted.

    The original worker points SAM3_MODEL_PATH at Meta's `sam3.pt`. The facebook/sam3 Hub repo
    ships that file beside the transformers-format model, which then loads from its directory. A
    lone sam3.pt is converted once into `cache_dir` (backends.sam3_convert). InstructPix2Pix has
    no such converter: a lone file is refused.
    """
    if (checkpoint.parent / marker).is_file():
        log.info(
            "%s=%s: loading the Hugging Face format model saved beside it in %s",
            env_name,
            checkpoint,
            checkpoint.parent,
        )
        return checkpoint.parent
    if "SAM3" in env_name:
        from .backends.sam3_convert import ConversionError, ensure_converted  # imports torch

        try:
            return ensure_converted(checkpoint, cache_dir / "sam3-converted")
        except ConversionError as err:
            raise WeightsError(f"{env_name}={checkpoint}: cannot convert it: {err}") from err
    raise WeightsError(
        f"{env_name}={checkpoint} is a raw PyTorch checkpoint with no {marker} beside it; this server loads "
        f"the diffusers format. Set {env_name} to a diffusers model directory or the hub id {DEFAULT_PIX2PIX}"
    )


def _in_hf_cache(repo_id: str, filename: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(repo_id, filename), str)
