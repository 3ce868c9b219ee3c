"""The seed's stages (extracting ... saving), one module each, run in order by `driver`."""

from .driver import output_paths, run_pipeline
from .saving import OutputPaths

__all__ = ["OutputPaths", "output_paths", "run_pipeline"]
