from videoedit.v1 import geometry_pb2 as _geometry_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Image(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class Mask(_message.Message):
    __slots__ = ("width", "height", "counts")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., counts: _Optional[_Iterable[int]] = ...) -> None: ...

class SegmentRequest(_message.Message):
    __slots__ = ("frames", "prompts", "session", "visual_prompts")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    SESSION_FIELD_NUMBER: _ClassVar[int]
    VISUAL_PROMPTS_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[Image]
    prompts: _containers.RepeatedScalarFieldContainer[str]
    session: TrackingSession
    visual_prompts: _containers.RepeatedCompositeFieldContainer[FramePrompt]
    def __init__(self, frames: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., prompts: _Optional[_Iterable[str]] = ..., session: _Optional[_Union[TrackingSession, _Mapping]] = ..., visual_prompts: _Optional[_Iterable[_Union[FramePrompt, _Mapping]]] = ...) -> None: ...

class FramePrompt(_message.Message):
    __slots__ = ("frame_index", "points", "box", "object_id")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    points: _containers.RepeatedCompositeFieldContainer[_geometry_pb2.Point]
    box: _geometry_pb2.Box
    object_id: int
    def __init__(self, frame_index: _Optional[int] = ..., points: _Optional[_Iterable[_Union[_geometry_pb2.Point, _Mapping]]] = ..., box: _Optional[_Union[_geometry_pb2.Box, _Mapping]] = ..., object_id: _Optional[int] = ...) -> None: ...

class TrackingSession(_message.Message):
    __slots__ = ("id", "first_frame", "close")
    ID_FIELD_NUMBER: _ClassVar[int]
    FIRST_FRAME_FIELD_NUMBER: _ClassVar[int]
    CLOSE_FIELD_NUMBER: _ClassVar[int]
    id: str
    first_frame: int
    close: bool
    def __init__(self, id: _Optional[str] = ..., first_frame: _Optional[int] = ..., close: _Optional[bool] = ...) -> None: ...

class Instance(_message.Message):
    __slots__ = ("object_id", "prompt", "score", "box", "mask")
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    object_id: int
    prompt: str
    score: float
    box: _geometry_pb2.Box
    mask: Mask
    def __init__(self, object_id: _Optional[int] = ..., prompt: _Optional[str] = ..., score: _Optional[float] = ..., box: _Optional[_Union[_geometry_pb2.Box, _Mapping]] = ..., mask: _Optional[_Union[Mask, _Mapping]] = ...) -> None: ...

class FrameSegmentation(_message.Message):
    __slots__ = ("frame_index", "instances")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    instances: _containers.RepeatedCompositeFieldContainer[Instance]
    def __init__(self, frame_index: _Optional[int] = ..., instances: _Optional[_Iterable[_Union[Instance, _Mapping]]] = ...) -> None: ...

class SegmentResponse(_message.Message):
    __slots__ = ("frames", "prompts_used")
    FRAMES_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_USED_FIELD_NUMBER: _ClassVar[int]
    frames: _containers.RepeatedCompositeFieldContainer[FrameSegmentation]
    prompts_used: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, frames: _Optional[_Iterable[_Union[FrameSegmentation, _Mapping]]] = ..., prompts_used: _Optional[_Iterable[str]] = ...) -> None: ...

class EditRequest(_message.Message):
    __slots__ = ("images", "instruction", "image_guidance_scale", "guidance_scale", "num_inference_steps", "seeds", "scheduler", "anchor")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    SEEDS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    ANCHOR_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    instruction: str
    image_guidance_scale: float
    guidance_scale: float
    num_inference_steps: int
    seeds: _containers.RepeatedScalarFieldContainer[int]
    scheduler: str
    anchor: Image
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ..., instruction: _Optional[str] = ..., image_guidance_scale: _Optional[float] = ..., guidance_scale: _Optional[float] = ..., num_inference_steps: _Optional[int] = ..., seeds: _Optional[_Iterable[int]] = ..., scheduler: _Optional[str] = ..., anchor: _Optional[_Union[Image, _Mapping]] = ...) -> None: ...

class EditResponse(_message.Message):
    __slots__ = ("images",)
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[Image]
    def __init__(self, images: _Optional[_Iterable[_Union[Image, _Mapping]]] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("source", "architecture", "tiny", "revision", "random_weights", "settings")
    class SettingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    TINY_FIELD_NUMBER: _ClassVar[int]
    REVISION_FIELD_NUMBER: _ClassVar[int]
    RANDOM_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    source: str
    architecture: str
    tiny: bool
    revision: str
    random_weights: bool
    settings: _containers.ScalarMap[str, str]
    def __init__(self, source: _Optional[str] = ..., architecture: _Optional[str] = ..., tiny: _Optional[bool] = ..., revision: _Optional[str] = ..., random_weights: _Optional[bool] = ..., settings: _Optional[_Mapping[str, str]] = ...) -> None: ...

class ModelServerInfo(_message.Message):
    __slots__ = ("segmenter", "editor", "device", "dtype", "segment_image_size", "max_segment_frames", "max_edit_batch", "max_message_bytes", "edit_max_batch_size", "segment_frame_batch", "max_batch_delay_ms", "max_queued_calls", "warmup_seconds", "max_prompt_tokens", "max_tracking_sessions", "tracking_session_idle_s")
    SEGMENTER_FIELD_NUMBER: _ClassVar[int]
    EDITOR_FIELD_NUMBER: _ClassVar[int]
    DEVICE_FIELD_NUMBER: _ClassVar[int]
    DTYPE_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_SEGMENT_FRAMES_FIELD_NUMBER: _ClassVar[int]
    MAX_EDIT_BATCH_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    EDIT_MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    SEGMENT_FRAME_BATCH_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_DELAY_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_QUEUED_CALLS_FIELD_NUMBER: _ClassVar[int]
    WARMUP_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_PROMPT_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MAX_TRACKING_SESSIONS_FIELD_NUMBER: _ClassVar[int]
    TRACKING_SESSION_IDLE_S_FIELD_NUMBER: _ClassVar[int]
    segmenter: ModelInfo
    editor: ModelInfo
    device: str
    dtype: str
    segment_image_size: int
    max_segment_frames: int
    max_edit_batch: int
    max_message_bytes: int
    edit_max_batch_size: int
    segment_frame_batch: int
    max_batch_delay_ms: float
    max_queued_calls: int
    warmup_seconds: float
    max_prompt_tokens: int
    max_tracking_sessions: int
    tracking_session_idle_s: float
    def __init__(self, segmenter: _Optional[_Union[ModelInfo, _Mapping]] = ..., editor: _Optional[_Union[ModelInfo, _Mapping]] = ..., device: _Optional[str] = ..., dtype: _Optional[str] = ..., segment_image_size: _Optional[int] = ..., max_segment_frames: _Optional[int] = ..., max_edit_batch: _Optional[int] = ..., max_message_bytes: _Optional[int] = ..., edit_max_batch_size: _Optional[int] = ..., segment_frame_batch: _Optional[int] = ..., max_batch_delay_ms: _Optional[float] = ..., max_queued_calls: _Optional[int] = ..., warmup_seconds: _Optional[float] = ..., max_prompt_tokens: _Optional[int] = ..., max_tracking_sessions: _Optional[int] = ..., tracking_session_idle_s: _Optional[float] = ...) -> None: ...
