"""The original worker's stages (extracting ... saving), one module each, run in order by `driver`;
what runs at the same time is in `concurrency`."""

from .context import MaskSources, OutputPaths
from .driver import output_paths, run_pipeline

__all__ = ["MaskSources", "OutputPaths", "output_paths", "run_pipeline"]
