"""The models behind the pipeline: the `Models` contract and its domain types.

Implementations: `grpc_client.ModelClient` (the model servers) and `fake.FakeModels` (tests).
"""

from .base import Detection, Models, ModelsInfo, Segmentation, Tracker

__all__ = ["Detection", "Models", "ModelsInfo", "Segmentation", "Tracker"]
