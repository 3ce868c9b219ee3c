"""Orchestrator settings, read from the environment (names in the README)."""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser().resolve() if value else None


def _paths(value: str) -> tuple[Path, ...]:
    return tuple(Path(p).expanduser().resolve() for p in value.split(os.pathsep) if p)


def is_within(path: Path, root: Path) -> bool:
    """`path` is `root` or lies under it (both resolved)."""
    return path == root or root in path.parents


# The default input root: a folder of its own, never the working directory, which holds other
# files (the job store, outputs, code) that a job must not be able to name as its input.
DEFAULT_MEDIA_DIR = "media"


def _default_media_dir() -> Path:
    """./media, created when missing (so `make serve` users have somewhere to put videos)."""
    media = Path(DEFAULT_MEDIA_DIR).resolve()
    try:
        media.mkdir(exist_ok=True)
    except OSError as err:
        raise ValueError(f"cannot create the default input root {media} ({err}); set VIDEOEDIT_INPUT_ROOTS") from err
    return media


# A VIDEOEDIT_CALLBACK_ALLOW entry that is not an address or network: a hostname, or `*.` and a
# domain (its subdomains).
_HOST_PATTERN = re.compile(r"(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*")


def callback_allow_list(value: str) -> tuple[str, ...]:
    """VIDEOEDIT_CALLBACK_ALLOW: comma-separated hostnames, `*.example.com` (its subdomains), IP
    addresses or CIDR networks; lower-cased. ValueError naming the bad entry."""
    entries = tuple(e.strip().lower() for e in value.split(",") if e.strip())
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            if not _HOST_PATTERN.fullmatch(entry):
                raise ValueError(
                    f"VIDEOEDIT_CALLBACK_ALLOW entry {entry[:100]!r} is neither a hostname, `*.domain`, "
                    "an IP address nor a CIDR network"
                ) from None
    return entries


@dataclass(frozen=True)
class Settings:
    """Everything an orchestrator process is configured with, read once from the environment
    (`from_env`, variable names in the README) and checked as a whole on construction: where
    inputs may come from and outputs go, the model servers and their deadline, the job store and
    its lease, and the API's security and upload limits. Immutable; the in-process API
    (legacy_api) reads it again for every call."""

    # Directories input videos must lie in (symlinks resolved first); none of them may hold the
    # outputs or the job store, nor lie in the output root.
    input_roots: tuple[Path, ...] = field(default_factory=lambda: (Path(DEFAULT_MEDIA_DIR).resolve(),))
    # Root of every job's output_dir (the original worker's UR_EDIT_OUTPUT_DIR).
    output_root: Path = field(default_factory=lambda: Path("outputs").resolve())
    # gRPC target of the model server(s).
    model_servers: str = "localhost:50052"
    # Deadline of one model-server call, seconds.
    model_timeout_s: float = 600.0
    # Bearer token every model-server call carries (the model servers' VIDEOEDIT_MODEL_TOKEN).
    model_token: str | None = None
    # The job store: a postgresql:// URL (shared by any number of orchestrators) or a SQLite
    # file (None: <output_root>/.videoedit-jobs.sqlite3).
    job_db: str | None = None
    # Seconds a claimed job stays this orchestrator's without a renewal; a job whose
    # orchestrator died is run by another one after this long.
    job_lease_s: float = 30.0

    # Bearer token every VideoEditService call must carry (None: no auth).
    auth_token: str | None = None
    # TLS certificate chain and private key (PEM); both or neither.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    # gRPC server reflection (grpcurl without .proto files).
    reflection: bool = True
    # Where UploadVideo stores files (None: <first input root>/uploads); must lie in an input root.
    upload_dir: Path | None = None
    # Largest upload accepted.
    max_upload_bytes: int = 2 << 30
    # Seconds an upload may go without a message before it is dropped (a stalled client).
    upload_idle_s: float = 30.0
    # Streams (WatchStatus, UploadVideo, DownloadArtifact) one client (peer host) may hold open.
    max_streams_per_client: int = 1000
    # Uploads one client may send at once.
    max_uploads_per_client: int = 4
    # The secret an HTTP gateway proves itself with (None: none is trusted): a call carrying it
    # counts against the limits above as the HTTP client it names, not as the gateway's address.
    gateway_token: str | None = None
    # WatchStatus streams open in total, from all clients.
    max_watchers: int = 20000
    # Workers of their own for one-frame jobs (mode single_frame) beside max_concurrent_jobs, so a
    # preview never waits behind a long video job (0: they queue with the rest).
    preview_slots: int = 1
    # The mask cache's bound (0: no cache): masks tracked once, reused by later jobs on the same
    # input content, prompt, tracking parameters and segmenter; in <output_root>/.mask-cache.
    mask_cache_bytes: int = 2 << 30
    # Webhooks (extra.callback_url; jobs/webhooks.py): the hosts a callback may reach besides
    # public addresses (callback_allow_list's entries), the secret every callback is signed with
    # until tenants have secrets of their own (never in repr: Settings may be logged), and how long
    # one delivery is retried.
    callback_allow: tuple[str, ...] = ()
    webhook_secret: str | None = field(default=None, repr=False)
    callback_retry_s: float = 300.0

    def __post_init__(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("TLS needs both VIDEOEDIT_TLS_CERT and VIDEOEDIT_TLS_KEY")
        if self.job_db and "://" in self.job_db and not self.job_db_url:
            raise ValueError(
                f"VIDEOEDIT_JOB_DB {self.job_db.split('://')[0]}://... is not supported: give a "
                "postgresql:// URL or the path of a SQLite file"
            )
        if not self.job_lease_s >= 2:
            raise ValueError(f"VIDEOEDIT_JOB_LEASE_S {self.job_lease_s} is too short (at least 2 seconds)")
        for name, value in (
            ("VIDEOEDIT_MAX_STREAMS_PER_CLIENT", self.max_streams_per_client),
            ("VIDEOEDIT_MAX_UPLOADS_PER_CLIENT", self.max_uploads_per_client),
            ("VIDEOEDIT_MAX_WATCHERS", self.max_watchers),
        ):
            if value < 1:
                raise ValueError(f"{name} {value} must be 1 or more")
        if self.preview_slots < 0:
            raise ValueError(f"VIDEOEDIT_PREVIEW_SLOTS {self.preview_slots} must be 0 (none) or more")
        if self.mask_cache_bytes < 0:
            raise ValueError(f"VIDEOEDIT_MASK_CACHE_MB {self.mask_cache_bytes / 2**20:g} must be 0 (off) or more")
        callback_allow_list(",".join(self.callback_allow))  # entries given directly, not from the environment
        if not self.callback_retry_s >= 0:
            raise ValueError(f"VIDEOEDIT_CALLBACK_RETRY_S {self.callback_retry_s} must be 0 (no retries) or more")
        if not self.upload_idle_s > 0:
            raise ValueError(f"VIDEOEDIT_UPLOAD_IDLE_S {self.upload_idle_s} must be more than 0 seconds")
        self._check_roots_apart()
        if not any(is_within(self.upload_path, r) for r in self.input_roots):
            raise ValueError(
                f"VIDEOEDIT_UPLOAD_DIR {self.upload_path} must lie inside an input root "
                "(VIDEOEDIT_INPUT_ROOTS), or jobs could not read what was uploaded"
            )

    def _check_roots_apart(self) -> None:
        """A job may read any file under an input root (and the input artifact serves it back):
        outputs and the job store there would be readable by every client; an input root in the
        output root would let a job name another job's outputs as its input."""
        for root in self.input_roots:
            if is_within(self.output_root, root):
                raise ValueError(
                    f"UR_EDIT_OUTPUT_DIR {self.output_root} lies inside the input root {root} "
                    "(VIDEOEDIT_INPUT_ROOTS): keep outputs and inputs in separate directories"
                )
            if is_within(root, self.output_root):
                raise ValueError(
                    f"the input root {root} (VIDEOEDIT_INPUT_ROOTS) lies inside UR_EDIT_OUTPUT_DIR "
                    f"{self.output_root}: keep outputs and inputs in separate directories"
                )
            if self.job_db_url is None and is_within(self.job_db_path, root):
                raise ValueError(
                    f"the SQLite job store {self.job_db_path} (VIDEOEDIT_JOB_DB) lies inside the input root {root} "
                    "(VIDEOEDIT_INPUT_ROOTS): put it outside every input root"
                )

    @property
    def mask_cache_dir(self) -> Path:
        return self.output_root / ".mask-cache"

    @property
    def upload_path(self) -> Path:
        return self.upload_dir or self.input_roots[0] / "uploads"

    @property
    def job_db_url(self) -> str | None:
        """The PostgreSQL URL, when the job store is PostgreSQL."""
        if self.job_db and self.job_db.startswith(("postgresql://", "postgres://")):
            return self.job_db
        return None

    @property
    def job_db_path(self) -> Path:
        """The SQLite file, when the job store is SQLite."""
        return _path(self.job_db) or self.output_root / ".videoedit-jobs.sqlite3"

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        defaults = cls()
        return cls(
            input_roots=_paths(env["VIDEOEDIT_INPUT_ROOTS"])
            if env.get("VIDEOEDIT_INPUT_ROOTS")
            else (_default_media_dir(),),
            output_root=Path(env.get("UR_EDIT_OUTPUT_DIR", "outputs")).expanduser().resolve(),
            model_servers=env.get("VIDEOEDIT_MODEL_SERVERS", defaults.model_servers),
            model_timeout_s=float(env.get("VIDEOEDIT_MODEL_TIMEOUT_S", defaults.model_timeout_s)),
            model_token=env.get("VIDEOEDIT_MODEL_TOKEN") or None,
            job_db=env.get("VIDEOEDIT_JOB_DB") or None,
            job_lease_s=float(env.get("VIDEOEDIT_JOB_LEASE_S", defaults.job_lease_s)),
            auth_token=env.get("VIDEOEDIT_AUTH_TOKEN") or None,
            tls_cert=_path(env.get("VIDEOEDIT_TLS_CERT")),
            tls_key=_path(env.get("VIDEOEDIT_TLS_KEY")),
            reflection=env.get("VIDEOEDIT_REFLECTION", "1").lower() not in ("0", "false", "no", "off"),
            upload_dir=_path(env.get("VIDEOEDIT_UPLOAD_DIR")),
            max_upload_bytes=int(float(env.get("VIDEOEDIT_MAX_UPLOAD_MB", 2048)) * 2**20),
            upload_idle_s=float(env.get("VIDEOEDIT_UPLOAD_IDLE_S", defaults.upload_idle_s)),
            max_streams_per_client=int(env.get("VIDEOEDIT_MAX_STREAMS_PER_CLIENT", defaults.max_streams_per_client)),
            max_uploads_per_client=int(env.get("VIDEOEDIT_MAX_UPLOADS_PER_CLIENT", defaults.max_uploads_per_client)),
            max_watchers=int(env.get("VIDEOEDIT_MAX_WATCHERS", defaults.max_watchers)),
            gateway_token=env.get("VIDEOEDIT_GATEWAY_TOKEN") or None,
            mask_cache_bytes=int(float(env.get("VIDEOEDIT_MASK_CACHE_MB", 2048)) * 2**20),
            preview_slots=int(env.get("VIDEOEDIT_PREVIEW_SLOTS", defaults.preview_slots)),
            callback_allow=callback_allow_list(env.get("VIDEOEDIT_CALLBACK_ALLOW", "")),
            webhook_secret=env.get("VIDEOEDIT_WEBHOOK_SECRET") or None,
            callback_retry_s=float(env.get("VIDEOEDIT_CALLBACK_RETRY_S", defaults.callback_retry_s)),
        )
