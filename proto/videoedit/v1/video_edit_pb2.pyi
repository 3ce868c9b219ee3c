import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from videoedit.v1 import geometry_pb2 as _geometry_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_QUEUED: _ClassVar[JobStatus]
    JOB_STATUS_EXTRACTING: _ClassVar[JobStatus]
    JOB_STATUS_MASKING: _ClassVar[JobStatus]
    JOB_STATUS_PROPAGATING: _ClassVar[JobStatus]
    JOB_STATUS_EDITING: _ClassVar[JobStatus]
    JOB_STATUS_SMOOTHING: _ClassVar[JobStatus]
    JOB_STATUS_SAVING: _ClassVar[JobStatus]
    JOB_STATUS_FINISHED: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]
    JOB_STATUS_CANCELLED: _ClassVar[JobStatus]

class Artifact(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ARTIFACT_UNSPECIFIED: _ClassVar[Artifact]
    ARTIFACT_OUTPUT_VIDEO: _ClassVar[Artifact]
    ARTIFACT_MASK_VIDEO: _ClassVar[Artifact]
    ARTIFACT_LOG: _ClassVar[Artifact]
    ARTIFACT_INPUT_VIDEO: _ClassVar[Artifact]
    ARTIFACT_OBJECTS: _ClassVar[Artifact]
    ARTIFACT_OBJECT_PREVIEW: _ClassVar[Artifact]
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_QUEUED: JobStatus
JOB_STATUS_EXTRACTING: JobStatus
JOB_STATUS_MASKING: JobStatus
JOB_STATUS_PROPAGATING: JobStatus
JOB_STATUS_EDITING: JobStatus
JOB_STATUS_SMOOTHING: JobStatus
JOB_STATUS_SAVING: JobStatus
JOB_STATUS_FINISHED: JobStatus
JOB_STATUS_FAILED: JobStatus
JOB_STATUS_CANCELLED: JobStatus
ARTIFACT_UNSPECIFIED: Artifact
ARTIFACT_OUTPUT_VIDEO: Artifact
ARTIFACT_MASK_VIDEO: Artifact
ARTIFACT_LOG: Artifact
ARTIFACT_INPUT_VIDEO: Artifact
ARTIFACT_OBJECTS: Artifact
ARTIFACT_OBJECT_PREVIEW: Artifact

class VideoEditRequest(_message.Message):
    __slots__ = ("job_id", "input_video_path", "output_dir", "mask_prompt", "edit_prompt", "mode", "max_frames", "image_guidance_scale", "guidance_scale", "erode_kernel", "num_inference_steps", "apply_smoothing", "smoothing_window", "smoothing_alpha", "seed", "extra", "objects", "visual_prompts")
    class ExtraEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    INPUT_VIDEO_PATH_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DIR_FIELD_NUMBER: _ClassVar[int]
    MASK_PROMPT_FIELD_NUMBER: _ClassVar[int]
    EDIT_PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAMES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_SCALE_FIELD_NUMBER: _ClassVar[int]
    ERODE_KERNEL_FIELD_NUMBER: _ClassVar[int]
    NUM_INFERENCE_STEPS_FIELD_NUMBER: _ClassVar[int]
    APPLY_SMOOTHING_FIELD_NUMBER: _ClassVar[int]
    SMOOTHING_WINDOW_FIELD_NUMBER: _ClassVar[int]
    SMOOTHING_ALPHA_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    EXTRA_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FIELD_NUMBER: _ClassVar[int]
    VISUAL_PROMPTS_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    input_video_path: str
    output_dir: str
    mask_prompt: str
    edit_prompt: str
    mode: str
    max_frames: int
    image_guidance_scale: float
    guidance_scale: float
    erode_kernel: int
    num_inference_steps: int
    apply_smoothing: bool
    smoothing_window: int
    smoothing_alpha: float
    seed: int
    extra: _containers.ScalarMap[str, str]
    objects: _containers.RepeatedCompositeFieldContainer[ObjectEdit]
    visual_prompts: _containers.RepeatedCompositeFieldContainer[VisualPrompt]
    def __init__(self, job_id: _Optional[str] = ..., input_video_path: _Optional[str] = ..., output_dir: _Optional[str] = ..., mask_prompt: _Optional[str] = ..., edit_prompt: _Optional[str] = ..., mode: _Optional[str] = ..., max_frames: _Optional[int] = ..., image_guidance_scale: _Optional[float] = ..., guidance_scale: _Optional[float] = ..., erode_kernel: _Optional[int] = ..., num_inference_steps: _Optional[int] = ..., apply_smoothing: _Optional[bool] = ..., smoothing_window: _Optional[int] = ..., smoothing_alpha: _Optional[float] = ..., seed: _Optional[int] = ..., extra: _Optional[_Mapping[str, str]] = ..., objects: _Optional[_Iterable[_Union[ObjectEdit, _Mapping]]] = ..., visual_prompts: _Optional[_Iterable[_Union[VisualPrompt, _Mapping]]] = ...) -> None: ...

class VisualPrompt(_message.Message):
    __slots__ = ("frame_index", "points", "box", "object")
    FRAME_INDEX_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    OBJECT_FIELD_NUMBER: _ClassVar[int]
    frame_index: int
    points: _containers.RepeatedCompositeFieldContainer[_geometry_pb2.Point]
    box: _geometry_pb2.Box
    object: int
    def __init__(self, frame_index: _Optional[int] = ..., points: _Optional[_Iterable[_Union[_geometry_pb2.Point, _Mapping]]] = ..., box: _Optional[_Union[_geometry_pb2.Box, _Mapping]] = ..., object: _Optional[int] = ...) -> None: ...

class ObjectEdit(_message.Message):
    __slots__ = ("mask_prompt", "edit_prompt", "instances", "visual_prompts")
    MASK_PROMPT_FIELD_NUMBER: _ClassVar[int]
    EDIT_PROMPT_FIELD_NUMBER: _ClassVar[int]
    INSTANCES_FIELD_NUMBER: _ClassVar[int]
    VISUAL_PROMPTS_FIELD_NUMBER: _ClassVar[int]
    mask_prompt: str
    edit_prompt: str
    instances: str
    visual_prompts: _containers.RepeatedCompositeFieldContainer[VisualPrompt]
    def __init__(self, mask_prompt: _Optional[str] = ..., edit_prompt: _Optional[str] = ..., instances: _Optional[str] = ..., visual_prompts: _Optional[_Iterable[_Union[VisualPrompt, _Mapping]]] = ...) -> None: ...

class VideoEditStatus(_message.Message):
    __slots__ = ("job_id", "status", "progress", "current_frame", "total_frames", "message", "error", "output_video_path", "mask_preview_path", "logs_path", "create_time", "update_time", "output_dir", "mask_prompt", "edit_prompt", "mode", "elapsed_seconds", "eta_seconds", "stage_eta_seconds", "media", "objects_found", "tenant")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FRAME_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FRAMES_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_VIDEO_PATH_FIELD_NUMBER: _ClassVar[int]
    MASK_PREVIEW_PATH_FIELD_NUMBER: _ClassVar[int]
    LOGS_PATH_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_DIR_FIELD_NUMBER: _ClassVar[int]
    MASK_PROMPT_FIELD_NUMBER: _ClassVar[int]
    EDIT_PROMPT_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    STAGE_ETA_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEDIA_FIELD_NUMBER: _ClassVar[int]
    OBJECTS_FOUND_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    status: JobStatus
    progress: float
    current_frame: int
    total_frames: int
    message: str
    error: str
    output_video_path: str
    mask_preview_path: str
    logs_path: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    output_dir: str
    mask_prompt: str
    edit_prompt: str
    mode: str
    elapsed_seconds: float
    eta_seconds: float
    stage_eta_seconds: float
    media: MediaSummary
    objects_found: int
    tenant: str
    def __init__(self, job_id: _Optional[str] = ..., status: _Optional[_Union[JobStatus, str]] = ..., progress: _Optional[float] = ..., current_frame: _Optional[int] = ..., total_frames: _Optional[int] = ..., message: _Optional[str] = ..., error: _Optional[str] = ..., output_video_path: _Optional[str] = ..., mask_preview_path: _Optional[str] = ..., logs_path: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., output_dir: _Optional[str] = ..., mask_prompt: _Optional[str] = ..., edit_prompt: _Optional[str] = ..., mode: _Optional[str] = ..., elapsed_seconds: _Optional[float] = ..., eta_seconds: _Optional[float] = ..., stage_eta_seconds: _Optional[float] = ..., media: _Optional[_Union[MediaSummary, _Mapping]] = ..., objects_found: _Optional[int] = ..., tenant: _Optional[str] = ...) -> None: ...

class MediaSummary(_message.Message):
    __slots__ = ("width", "height", "fps", "bit_depth", "color_range", "matrix", "primaries", "transfer", "hdr", "sample_aspect_ratio", "interlaced", "variable_frame_rate", "audio_tracks", "summary")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    BIT_DEPTH_FIELD_NUMBER: _ClassVar[int]
    COLOR_RANGE_FIELD_NUMBER: _ClassVar[int]
    MATRIX_FIELD_NUMBER: _ClassVar[int]
    PRIMARIES_FIELD_NUMBER: _ClassVar[int]
    TRANSFER_FIELD_NUMBER: _ClassVar[int]
    HDR_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_ASPECT_RATIO_FIELD_NUMBER: _ClassVar[int]
    INTERLACED_FIELD_NUMBER: _ClassVar[int]
    VARIABLE_FRAME_RATE_FIELD_NUMBER: _ClassVar[int]
    AUDIO_TRACKS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    fps: float
    bit_depth: int
    color_range: str
    matrix: str
    primaries: str
    transfer: str
    hdr: str
    sample_aspect_ratio: str
    interlaced: bool
    variable_frame_rate: bool
    audio_tracks: int
    summary: str
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., fps: _Optional[float] = ..., bit_depth: _Optional[int] = ..., color_range: _Optional[str] = ..., matrix: _Optional[str] = ..., primaries: _Optional[str] = ..., transfer: _Optional[str] = ..., hdr: _Optional[str] = ..., sample_aspect_ratio: _Optional[str] = ..., interlaced: _Optional[bool] = ..., variable_frame_rate: _Optional[bool] = ..., audio_tracks: _Optional[int] = ..., summary: _Optional[str] = ...) -> None: ...

class WatchStatusRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class CancelEditRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("status", "page_size", "page_token")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    status: JobStatus
    page_size: int
    page_token: str
    def __init__(self, status: _Optional[_Union[JobStatus, str]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListJobsResponse(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[VideoEditStatus]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[VideoEditStatus, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class UploadVideoRequest(_message.Message):
    __slots__ = ("metadata", "chunk")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    metadata: UploadMetadata
    chunk: bytes
    def __init__(self, metadata: _Optional[_Union[UploadMetadata, _Mapping]] = ..., chunk: _Optional[bytes] = ...) -> None: ...

class UploadMetadata(_message.Message):
    __slots__ = ("filename", "size_bytes", "sha256")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    filename: str
    size_bytes: int
    sha256: str
    def __init__(self, filename: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class FindUploadRequest(_message.Message):
    __slots__ = ("sha256",)
    SHA256_FIELD_NUMBER: _ClassVar[int]
    sha256: str
    def __init__(self, sha256: _Optional[str] = ...) -> None: ...

class UploadVideoResponse(_message.Message):
    __slots__ = ("input_video_path", "size_bytes", "sha256")
    INPUT_VIDEO_PATH_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    SHA256_FIELD_NUMBER: _ClassVar[int]
    input_video_path: str
    size_bytes: int
    sha256: str
    def __init__(self, input_video_path: _Optional[str] = ..., size_bytes: _Optional[int] = ..., sha256: _Optional[str] = ...) -> None: ...

class DownloadArtifactRequest(_message.Message):
    __slots__ = ("job_id", "artifact", "offset", "length", "object_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    LENGTH_FIELD_NUMBER: _ClassVar[int]
    OBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    artifact: Artifact
    offset: int
    length: int
    object_id: int
    def __init__(self, job_id: _Optional[str] = ..., artifact: _Optional[_Union[Artifact, str]] = ..., offset: _Optional[int] = ..., length: _Optional[int] = ..., object_id: _Optional[int] = ...) -> None: ...

class DownloadArtifactResponse(_message.Message):
    __slots__ = ("filename", "size_bytes", "chunk")
    FILENAME_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    filename: str
    size_bytes: int
    chunk: bytes
    def __init__(self, filename: _Optional[str] = ..., size_bytes: _Optional[int] = ..., chunk: _Optional[bytes] = ...) -> None: ...
