"""Typed, strict configuration: unknown keys are errors, every key has a default and a description.

``load(path)`` reads TOML with :mod:`tomllib`, resolves relative paths against the file's folder,
applies the environment overrides and runs the cross-field checks; every problem is reported with
its key path (``watch[1].output``) in one :class:`~mattectl.errors.ConfigError`.

This module knows neither the model catalog nor the rule presets: model names are checked against
the names the caller passes (``models=``), and checks that need more than the file are passed in
``checks=``. :mod:`mattectl.checks` loads a config with both, as everything that uses one does.
"""

from __future__ import annotations

import ipaddress
import os
import pwd
import re
import socket
import stat
import tomllib
from collections.abc import Callable, Collection, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from mattectl.errors import ConfigError
from mattectl.fsutil import inside
from mattectl.imageio.options import (
    IMAGE_EXTENSIONS,
    EdgeMode,
    OutputFormat,
    OutputOptions,
    parse_colour,
)
from mattectl.validation import problems as validation_problems

DEFAULT_CONFIG = Path("/etc/mattectl/config.toml")
ENV_CONFIG = "MATTECTL_CONFIG"
ENV_MODELS_DIR = "MATTECTL_MODELS_DIR"
ENV_STATE_DIR = "MATTECTL_STATE_DIR"
ENV_DATABASE_URL = "MATTECTL_DATABASE_URL"
ENV_ALLOW_ROOT = "MATTECTL_ALLOW_ROOT"  # 1: daemon.allow_root (a developer's root container)

DEFAULT_EXTENSIONS = ("jpg", "jpeg", "png", "tif", "tiff", "webp", "bmp", "heic", "heif")
TEMPLATE_FIELDS = ("stem", "ext", "name", "model", "date", "folder")
# Shorter quiet times take a copy that merely pauses for a finished file.
MIN_STABILITY_S = 0.5


MODEL_NAMES = "model_names"  # validation context: the model names a config may use


def _known_model(name: str, info: ValidationInfo) -> str:
    """``name`` when the catalog passed in the context has it; any name without a catalog."""
    known: Collection[str] | None = (info.context or {}).get(MODEL_NAMES)
    if known is not None and name not in known:
        raise ValueError(f"unknown model '{name}' (known: {', '.join(sorted(known))})")
    return name


def _resolve(value: Path, info: ValidationInfo) -> Path:
    """Expand ``~`` and make a path absolute against the config file's folder."""
    value = value.expanduser()
    if not value.is_absolute():
        base = (info.context or {}).get("base_dir", Path.cwd())
        value = Path(base) / value
    return Path(os.path.normpath(value))


ConfigPath = Annotated[Path, AfterValidator(_resolve)]


def _default_state_dir() -> Path:
    # systemd sets STATE_DIRECTORY for units with StateDirectory=.
    if state := os.environ.get("STATE_DIRECTORY"):
        return Path(state.split(":")[0])
    return Path("~/.local/state/mattectl").expanduser()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


def cores_available() -> int:
    """CPU cores this process may run on: systemd's ``CPUAffinity=`` and a container's cpuset
    count, where ``os.cpu_count()`` sees the whole machine."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


MAX_WORKERS = 16


def auto_workers(cores: int) -> int:
    """``daemon.workers = "auto"``: a photo being finished per core (its edges take one core
    for a while: matting takes seconds) and one more to feed the model, at least three."""
    return max(3, min(MAX_WORKERS, cores + 1))


class DaemonConfig(_Strict):
    state_dir: ConfigPath = Field(
        default_factory=_default_state_dir,
        description="Job database, pid file and heartbeat. Env MATTECTL_STATE_DIR overrides it.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log verbosity."
    )
    workers: int | Literal["auto"] = Field(
        "auto", description=(
            "Jobs in flight at once (1-16). Each model runs one photo at a time; the others "
            "decode, finish and encode meanwhile, so that the model never waits for them. "
            "'auto': one per CPU core this daemon may use, plus one, at least 3 (three kept "
            "U2-NetP busier than two on a 2-core CPU: mattectl bench --daemon --workers N)."),
    )
    rescan_interval_s: float = Field(
        60.0, gt=0, description="Full rescan of every drop folder, to catch missed events."
    )
    heartbeat_s: float = Field(5.0, gt=0, description="How often the daemon says it is alive.")
    max_attempts: int = Field(
        3, ge=1, description=(
            "Attempts per job for errors worth retrying (a model error, a failed write). A full "
            "or unwritable output folder pauses the folder instead and spends no attempt.")
    )
    retry_delay_s: float = Field(30.0, ge=0, description="Wait before the first retry; doubles.")
    max_pixels: int = Field(
        200_000_000, gt=0, description="Inputs with more pixels are rejected before decoding."
    )
    max_decode_mb: int = Field(
        6144, ge=64, description=(
            "Memory the photos in flight may take together, each estimated from its header "
            "before decoding: about 45 bytes per pixel of an 8-bit photo, 75 of a 16-bit one, "
            "the model process's share included (1030 MB for 24 MP, 4292 for 100 MP). A photo "
            "that needs more alone is refused with its estimate; photos that need more "
            "together are decoded and matted one after another."),
    )
    min_side: int = Field(16, ge=1, description="Inputs narrower or lower than this fail.")
    stop_grace_s: float = Field(
        30.0, ge=0, description="On SIGTERM, wait this long for running jobs, then re-queue them."
    )
    job_timeout_s: float = Field(
        600.0, gt=0, description=(
            "A job running longer counts as hung: systemd's watchdog pings stop, so systemd "
            "restarts the service and the job is re-queued."),
    )
    retention_days: float = Field(
        90.0, ge=0, description="Finished job rows older than this are pruned (0 keeps them)."
    )
    backup_interval_h: float = Field(
        24.0, ge=0, description=(
            "An online backup of the job database (SQLite's backup API) into "
            "<state_dir>/backups when the newest is older than this many hours; 0: none."),
    )
    backup_keep: int = Field(7, ge=1, description="How many job database backups are kept.")
    allow_root: bool = Field(
        False, description="Allow running as root (not recommended). Env MATTECTL_ALLOW_ROOT=1 "
                           "sets it.")
    rules_dir: ConfigPath = Field(
        Path("rules"),
        description=(
            "Rule presets (<name>.toml), looked up here before the presets shipped with "
            "mattectl; a file here overrides a shipped preset of the same name."
        ),
    )

    @field_validator("workers", mode="before")
    @classmethod
    def _workers_in_range(cls, value: object) -> object:
        if value == "auto":
            return value
        if isinstance(value, bool) or not isinstance(value, int) \
                or not 1 <= value <= MAX_WORKERS:
            raise ValueError(f"must be 'auto' or a whole number from 1 to {MAX_WORKERS}")
        return value

    @property
    def worker_count(self) -> int:
        """``workers`` as a number, 'auto' resolved on this machine (:func:`auto_workers`)."""
        return auto_workers(cores_available()) if self.workers == "auto" else self.workers


class DatabaseConfig(_Strict):
    """Where the job log lives: the SQLite file in the state directory (one workstation), or a
    PostgreSQL database that several workstations share (``postgresql+psycopg://...``)."""

    url: str | None = Field(
        None, description=(
            "The job log's database. Unset: <state_dir>/jobs.sqlite3. A studio with several "
            "workstations: postgresql+psycopg://USER:PASSWORD@HOST/DB (needs mattectl[postgres]). "
            "Env MATTECTL_DATABASE_URL overrides it (and url_file). Its password is never shown."),
    )
    url_file: ConfigPath | None = Field(
        None, description=(
            "A file holding the URL (the first line), e.g. a systemd credential "
            "(LoadCredential=database-url:/etc/mattectl/database-url, then "
            "url_file = \"/run/credentials/mattectl.service/database-url\"); instead of url."),
    )
    host_name: str | None = Field(
        None, min_length=1, max_length=100, pattern=r"^[^:\s]+$", description=(
            "This workstation's name in a shared job log (its claims, its row in `mattectl "
            "status`); unset: the machine's host name. Each workstation needs its own."),
    )
    lease_s: float = Field(
        60.0, ge=5, description=(
            "A running job's lease: its daemon renews it with each heartbeat; a job whose lease "
            "ran out (its workstation died or lost the network) is queued again, the attempt "
            "counted, and a silent workstation is shown as down in `mattectl status`."),
    )

    @field_validator("url")
    @classmethod
    def _known_database(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return normalise_database_url(value)


class U2NetConfig(_Strict):
    resample: Literal["official", "lanczos"] = Field(
        "lanczos",
        description=(
            "Resizing to and from 320x320: 'official' is the U-2-Net authors' anti-aliased "
            "bilinear, 'lanczos' is what rembg uses (the default: ahead on hair truth with "
            "edges = 'matting', `mattectl eval --finish grid`)."
        ),
    )
    half: bool = Field(
        True, description="With precision = 'auto' on CUDA: float16 (true) or float32.")
    precision: Literal["auto", "float32", "bfloat16", "float16"] = Field(
        "auto",
        description=(
            "Number format of inference. 'auto': float16 on CUDA (see half); on the CPU "
            "bfloat16 where a one-time calibration (a few passes of each, remembered per "
            "machine) shows it faster than float32, else float32. float16 runs on CUDA only."
        ),
    )
    gpu_memory_mb: int = Field(
        0, ge=0, description="Cap on the GPU memory PyTorch may hold for U²-Net; 0: no cap.")


class BshmConfig(_Strict):
    model_id: str = Field(
        "damo/cv_unet_image-matting",
        description="ModelScope model id that `mattectl models pull bshm` downloads.",
    )
    max_side: int = Field(
        2000, ge=64,
        description="Longer photos are reduced to this long side for BSHM (the model card's "
                    "limit); the alpha is brought back to full size.",
    )
    intra_op_threads: int = Field(
        0, ge=0,
        description="TensorFlow threads inside one op; 0: models.threads, else TF's choice.")
    inter_op_threads: int = Field(
        0, ge=0, description="TensorFlow ops run side by side; 0: TensorFlow's choice.")
    gpu_memory_mb: int = Field(
        0, ge=0,
        description="Cap on the GPU memory TensorFlow may take; 0: grow as needed (TensorFlow "
                    "never maps the whole GPU).",
    )


class ModelsConfig(_Strict):
    dir: ConfigPath | None = Field(
        None,
        description=(
            "Where `mattectl models pull` puts weights, one sub-folder per model. Default: "
            "<state_dir>/models. Env MATTECTL_MODELS_DIR overrides it."
        ),
    )
    paths: dict[str, ConfigPath] = Field(
        default_factory=dict,
        description=(
            "Explicit weights per model name: a file for U²-Net (u2netp = '/opt/w/u2netp.pth'), "
            "a ModelScope model folder for BSHM."),
    )
    device: str = Field("auto", description="'auto' (GPU when there is one), 'cpu', 'cuda[:N]'.")
    require_gpu: bool = Field(False, description="Refuse to start without a GPU.")
    threads: int = Field(
        0, ge=0, description="CPU threads for inference; 0 lets the framework choose.")
    idle_unload_s: float = Field(
        900.0, ge=0, description="Unload a model unused this long (0 keeps models loaded)."
    )
    preload: list[str] = Field(
        default_factory=list, description="Models loaded at start-up instead of on first use."
    )
    isolation: Literal["process", "inline"] = Field(
        "process",
        description="'process' runs each model in a child process that is restarted after a "
                    "crash, a hang or a framework error; 'inline' runs it in the daemon itself.",
    )
    load_timeout_s: float = Field(
        240.0, gt=0, description="A model (and its child process) that takes longer to load fails.")
    predict_timeout_s: float = Field(
        300.0, gt=0,
        description="An inference that takes longer is taken for a hang: the child process is "
                    "killed and the job retried (process isolation only).",
    )
    modelscope_cache: ConfigPath | None = Field(
        None,
        description="ModelScope cache that `mattectl models pull` fills and that is searched "
                    "first. Default: $MODELSCOPE_CACHE, else <models dir>/modelscope.",
    )
    modelscope_endpoint: str | None = Field(
        None, description="ModelScope hub address for pulls (a mirror); default: ModelScope's.")
    u2net: U2NetConfig = Field(default_factory=U2NetConfig)
    bshm: BshmConfig = Field(default_factory=BshmConfig)

    @field_validator("paths")
    @classmethod
    def _paths(cls, value: dict[str, Path], info: ValidationInfo) -> dict[str, Path]:
        for name in value:
            _known_model(name, info)
        return value

    @field_validator("preload")
    @classmethod
    def _preload(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return [_known_model(name, info) for name in value]

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
            raise ValueError("must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
        return value


class WatchConfig(_Strict):
    name: str = Field(description="Short name shown in status and job lists.")
    input: ConfigPath = Field(description="The drop folder. Must exist.")
    output: ConfigPath = Field(description="Where cutouts go (created when missing).")
    recursive: bool = Field(True, description="Watch sub-folders too; output mirrors them.")
    extensions: tuple[str, ...] = Field(DEFAULT_EXTENSIONS, description="File types picked up.")
    polling: bool = Field(False, description="Poll instead of inotify (NAS, SMB and NFS mounts).")
    poll_interval_s: float = Field(2.0, gt=0, description="Polling period when polling = true.")
    stability_s: float = Field(
        3.0, description=(
            "A file is taken once its size and mtime are unchanged this long (at least "
            f"{MIN_STABILITY_S:g} s)."),
    )
    release_on_close: bool = Field(
        True, description=(
            "Take a photo as soon as its writer closes it (or renames it into the folder) when "
            "its bytes are a whole JPEG, PNG or WebP, instead of waiting stability_s; other "
            "files, and polled folders, always wait."),
    )
    model: str = Field("u2netp", description="Model that mattes this folder's photos.")
    rules: str | None = Field(
        None, description="Rule preset that chooses the model per photo (overrides `model`)."
    )
    latency_budget_ms: float | None = Field(
        None, gt=0, description="With `rules`: expected inference time per photo not to exceed."
    )
    on_success: Literal["keep", "move"] = Field("keep", description="What happens to the original.")
    on_failure: Literal["keep", "move"] = Field("keep", description="Likewise when the job fails.")
    processed_dir: ConfigPath | None = Field(None, description="Needed when on_success = 'move'.")
    failed_dir: ConfigPath | None = Field(None, description="Needed when on_failure = 'move'.")
    output_template: str = Field(
        "{stem}",
        description=(
            f"Output file name; fields: {', '.join(TEMPLATE_FIELDS)}. The extension follows "
            "output_format; a template that ends in an image extension must match it."
        ),
    )
    on_collision: Literal["suffix", "overwrite", "skip"] = Field(
        "suffix", description="When the output name exists: add -1, -2...; replace it; or skip."
    )
    processed_retention_days: float = Field(
        0.0, ge=0, description="Delete moved originals older than this from processed_dir "
        "(0 keeps them forever)."
    )
    output_format: OutputFormat = Field(
        OutputFormat.PNG,
        description=(
            "png (RGBA), tiff (RGBA, 16 bit kept), webp (lossless RGBA), jpeg (flattened onto "
            "background), matte (the alpha alone, grayscale PNG)."
        ),
    )
    background: str = Field("#ffffff", description="jpeg only: colour behind the subject.")
    jpeg_quality: int = Field(95, ge=1, le=100, description="jpeg only: quality (1..100).")
    trim: bool = Field(False, description="Crop to the subject's bounding box.")
    trim_margin: int = Field(0, ge=0, description="Pixels kept around the subject when trimming.")
    keep_16bit: bool = Field(
        True, description="png and tiff keep 16 bits per channel when the source has them."
    )
    clean_edges: bool = Field(
        True, description="Subject colour in semi-transparent edges; alpha refined to the photo "
        "as `edges` and `fill_holes` say (false: the model's alpha as it came)."
    )
    edges: EdgeMode = Field(
        EdgeMode.MATTING,
        description=(
            "How the alpha is finished at the photo's resolution: 'matting' (closed-form alpha "
            "matting of the uncertain band, best on truth), 'guided' (a guided filter of the "
            "band: about a third of the cost, a little worse), 'clean' (the compositing "
            "equation with local colours; the cheapest), 'off' (the model's alpha as it is)."),
    )
    fill_holes: bool = Field(
        True, description="Make opaque the partial pixels the subject encloses (pale skin, "
        "white clothes) unless they show the background's colour."
    )

    @field_validator("stability_s")
    @classmethod
    def _stability(cls, value: float) -> float:
        if value < MIN_STABILITY_S:
            raise ValueError(
                f"{value:g} s is too short: a photo still being copied (a pause of the network "
                "or of a card reader) would be taken and read half-written; use at least "
                f"{MIN_STABILITY_S:g} s (the default is 3 s, more for network mounts)")
        return value

    @field_validator("background")
    @classmethod
    def _background(cls, value: str) -> str:
        parse_colour(value)
        return value

    @property
    def output_options(self) -> OutputOptions:
        return OutputOptions(
            format=self.output_format, background=parse_colour(self.background),
            jpeg_quality=self.jpeg_quality, trim=self.trim, trim_margin=self.trim_margin,
            keep_16bit=self.keep_16bit, clean_edges=self.clean_edges,
            edges=self.edges, fill_holes=self.fill_holes,
        )

    @property
    def model_choice(self) -> str:
        """What chooses this folder's model, as shown to people: a model, or its rule preset."""
        return self.model if self.rules is None else f"rules: {self.rules}"

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value):
            raise ValueError("use letters, digits, '-', '_' and '.' (at most 64)")
        return value

    @field_validator("model")
    @classmethod
    def _model(cls, value: str, info: ValidationInfo) -> str:
        return _known_model(value, info)

    @field_validator("extensions")
    @classmethod
    def _extensions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = tuple(ext.lower().lstrip(".") for ext in value)
        if not cleaned or not all(re.fullmatch(r"[a-z0-9]+", ext) for ext in cleaned):
            raise ValueError("list file extensions such as 'jpg' (letters and digits)")
        return cleaned

    @field_validator("output_template")
    @classmethod
    def _template(cls, value: str) -> str:
        try:
            rendered = render_template(
                value, stem="x", ext="jpg", name="x.jpg", model="m", day=date.today(), folder="f"
            )
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"bad template ({exc}); fields: {', '.join(TEMPLATE_FIELDS)}") from exc
        if not rendered.strip(". "):
            raise ValueError("the template renders an empty file name")
        parts = Path(rendered).parts
        if Path(rendered).is_absolute() or ".." in parts:
            raise ValueError("the output name must stay inside the output folder (no '..', "
                             "no absolute path)")
        return value


def split_listen(value: str) -> tuple[str, int]:
    """``"host:port"`` (``"[::1]:8750"`` for IPv6; port 0: any free one) -> ``(host, port)``;
    raises ValueError."""
    host, sep, port = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"'{value}' is not host:port (such as 127.0.0.1:8750)")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reached from this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name: it may resolve to any address


class WebConfig(_Strict):
    enabled: bool = Field(False, description="Serve the studio page from `mattectl run`.")
    listen: str = Field(
        "127.0.0.1:8750",
        description="host:port the page listens on; 0.0.0.0:8750 for every computer in the "
                    "studio (needs token = true).")
    token: bool = Field(
        True,
        description="Actions (retry) need the token kept in <state_dir>/web/token (shown by "
                    "`mattectl web --token`); false: no token, a read-only page on loopback.")
    recent: int = Field(24, ge=1, le=200, description="How many recent cutouts the page shows.")
    refresh_s: float = Field(3.0, ge=1, le=300, description="How often the page updates itself.")

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        split_listen(value)
        return value

    @property
    def address(self) -> tuple[str, int]:
        return split_listen(self.listen)


class Settings(_Strict):
    daemon: DaemonConfig = Field(default_factory=DaemonConfig)
    database: DatabaseConfig = Field(default_factory=DatabaseConfig)
    models: ModelsConfig = Field(default_factory=ModelsConfig)
    watch: list[WatchConfig] = Field(default_factory=list)
    web: WebConfig = Field(default_factory=WebConfig)
    source: Path | None = Field(None, exclude=True, description="The file this was read from.")

    @property
    def models_dir(self) -> Path:
        return self.models.dir or self.daemon.state_dir / "models"

    @property
    def database_path(self) -> Path:
        return self.daemon.state_dir / "jobs.sqlite3"

    @property
    def database_url(self) -> str | None:
        """The configured database URL (env, url or url_file), None for the default SQLite file.
        Raises ConfigError when url_file cannot be read."""
        if self.database.url is not None:
            return self.database.url
        if self.database.url_file is None:
            return None
        return read_url_file(self.database.url_file, str(self.source or "config"))

    @property
    def job_log(self) -> Path | str:
        """What :meth:`mattectl.store.repository.JobRepository.open` takes: the SQLite file (a
        Path), or a server database's URL."""
        url = self.database_url
        if url is None:
            return self.database_path
        if url.startswith("sqlite"):
            return sqlite_file(url)
        return url

    @property
    def job_log_shown(self) -> str:
        """The job log's place as it may be printed and logged: the password masked."""
        target = self.job_log
        return str(target) if isinstance(target, Path) else mask_url(target)

    @property
    def host_name(self) -> str:
        return self.database.host_name or socket.gethostname()

    @property
    def pid_path(self) -> Path:
        """The daemon's lock and pid file; its mtime is a heartbeat that needs no free space."""
        return self.daemon.state_dir / "mattectl.pid"

    @property
    def web_dir(self) -> Path:
        """The studio page's token, one-time sign-in links and thumbnails."""
        return self.daemon.state_dir / "web"

    def watch_named(self, name: str) -> WatchConfig:
        for watch in self.watch:
            if watch.name == name:
                return watch
        raise KeyError(name)


def template_extension(template: str) -> str | None:
    """The extension written literally at the end of a template (``'{stem}.png'`` -> ``'png'``);
    an extension that comes from a field (``{name}``, ``{ext}``) is part of the name."""
    tail = template[template.rfind("}") + 1:]
    match = re.search(r"\.([A-Za-z0-9]+)$", tail)
    return match.group(1).lower() if match else None


def render_template(
    template: str, *, stem: str, ext: str, name: str, model: str, day: date, folder: str
) -> str:
    return template.format(
        stem=stem, ext=ext, name=name, model=model, date=day.isoformat(), folder=folder
    )


# -- the database URL ------------------------------------------------------------------------------

def normalise_database_url(url: str) -> str:
    """``url`` with PostgreSQL's plain schemes mapped to the psycopg 3 driver; ValueError for a
    database mattectl does not support (the message never shows the password)."""
    url = url.strip()
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError("not a database URL (expected "
                         "postgresql+psycopg://USER:PASSWORD@HOST/DB)")
    if scheme in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg3"):
        return f"postgresql+psycopg://{rest}"
    if scheme == "sqlite":
        if not rest.startswith("/") or rest == "/":
            raise ValueError("an SQLite URL names a file: sqlite:////absolute/path.sqlite3")
        return url
    raise ValueError(f"unsupported database {scheme!r} (supported: the SQLite file, or "
                     "postgresql+psycopg://...)")


def mask_url(url: str) -> str:
    """``url`` with its password (in the authority or as ``password=``) replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    user, at, host = rest.rpartition("@")  # the last '@': a password may hold one
    if sep and at and ":" in user:
        # (an '@' later in the URL masks more than the password, never less)
        rest = f"{user.partition(':')[0]}:***@{host}"
    return re.sub(r"([?&]password=)[^&]*", r"\1***", f"{scheme}{sep}{rest}")


def sqlite_file(url: str) -> Path:
    """The file an ``sqlite:///...`` URL names."""
    from urllib.parse import unquote

    return Path(unquote(url.partition("://")[2].split("?")[0][1:]))


def read_url_file(path: Path, source: str = "config") -> str:
    """The database URL kept in ``path`` (its first line); ConfigError when it cannot be read."""
    try:
        line = path.read_text().strip().splitlines()[0] if path.stat().st_size else ""
    except (OSError, UnicodeDecodeError, IndexError) as exc:
        why = getattr(exc, "strerror", None) or str(exc) or "empty"
        raise ConfigError(source, [("database.url_file", f"cannot read {path}: {why}")]) from None
    try:
        return normalise_database_url(line)
    except ValueError as exc:
        raise ConfigError(source, [("database.url_file", f"{path}: {exc}")]) from None


# -- cross-field checks: each yields (key path, message) ------------------------------------------

Check = Callable[[Settings], Iterator[tuple[str, str]]]


def check_drop_folders(settings: Settings) -> Iterator[tuple[str, str]]:
    """The daemon watches every drop folder: each must exist (one-shot commands such as
    ``mattectl process`` never read them, and leave this check out)."""
    for i, watch in enumerate(settings.watch):
        if not watch.input.is_dir():
            yield f"watch[{i}].input", f"folder does not exist: {watch.input}"


def check_watches_a_folder(settings: Settings) -> Iterator[tuple[str, str]]:
    """The daemon needs a drop folder to watch (one-shot commands such as ``mattectl process``
    need none, and leave this check out)."""
    if not settings.watch:
        yield "watch", ("no [[watch]] folder: the daemon would watch nothing; add a [[watch]] "
                        "table (name, input, output) for each drop folder")


def _check_folders(settings: Settings) -> Iterator[tuple[str, str]]:
    for i, watch in enumerate(settings.watch):
        key = f"watch[{i}]"
        if inside(watch.output, watch.input) or inside(watch.input, watch.output):
            yield f"{key}.output", (
                f"input {watch.input} and output {watch.output} must not be nested"
            )
        for mode, folder, field in (
            (watch.on_success, watch.processed_dir, "processed_dir"),
            (watch.on_failure, watch.failed_dir, "failed_dir"),
        ):
            if mode == "move" and folder is None:
                yield f"{key}.{field}", "required when the original is moved"
            if folder is not None and inside(folder, watch.output):
                yield f"{key}.{field}", f"must not be inside the output folder {watch.output}"
            # The intake leaves processed and failed folders inside the drop folder unwatched
            # (a sub-folder works); the drop folder itself would leave nothing to process.
            if folder is not None and inside(folder, watch.input) and inside(watch.input, folder):
                yield f"{key}.{field}", (
                    f"must not be the drop folder {watch.input}: the folder that originals are "
                    "moved to is not watched, so no photo would be processed; use another "
                    "folder or a sub-folder")


def _check_unique(settings: Settings) -> Iterator[tuple[str, str]]:
    seen_names: dict[str, int] = {}
    seen_inputs: dict[Path, int] = {}
    for i, watch in enumerate(settings.watch):
        if watch.name in seen_names:
            first = seen_names[watch.name]
            yield f"watch[{i}].name", f"'{watch.name}' is already used by watch[{first}]"
        seen_names.setdefault(watch.name, i)
        for j_path, j in seen_inputs.items():
            if inside(watch.input, j_path) or inside(j_path, watch.input):
                yield f"watch[{i}].input", f"overlaps watch[{j}].input {j_path}"
        seen_inputs[watch.input] = i
        for j, other in enumerate(settings.watch[:i]):
            if inside(watch.output, other.input) or inside(other.output, watch.input):
                yield f"watch[{i}].output", f"nested with watch[{j}]'s folders"
            elif inside(watch.output, other.output) or inside(other.output, watch.output):
                yield f"watch[{i}].output", (
                    f"shares its output folder with watch[{j}] ({other.output}): two folders' "
                    "cutouts of photos with the same name would take each other's names; give "
                    "each folder its own output")
        yield from _check_moved_elsewhere(settings, i)


def _check_moved_elsewhere(settings: Settings, i: int) -> Iterator[tuple[str, str]]:
    """Originals moved into another folder's drop folder would be processed again there."""
    watch = settings.watch[i]
    for field, folder in (("processed_dir", watch.processed_dir),
                          ("failed_dir", watch.failed_dir)):
        for j, other in enumerate(settings.watch):
            if folder is not None and j != i and inside(folder, other.input):
                yield f"watch[{i}].{field}", (
                    f"lies in watch[{j}]'s drop folder {other.input}: originals moved there "
                    "would be processed again by that folder")


def state_dir_problem(info: os.stat_result, path: Path, owner: int | None = None) -> str | None:
    """Why the folder ``info`` (its lstat or fstat) describes cannot hold the job database and
    the pid file, or None. ``owner``: the uid that must own it (None: any)."""
    if stat.S_ISLNK(info.st_mode):
        return f"{path} is a symbolic link: name the folder itself"
    if not stat.S_ISDIR(info.st_mode):
        return f"{path} is not a folder"
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o022:
        who = "anyone" if mode & 0o002 else "its group"
        return (f"{path} may be written by {who} (mode {mode:04o}): the job database and the pid "
                "file must be mattectl's alone; use a folder of its own (left unset: systemd's "
                "/var/lib/mattectl, else ~/.local/state/mattectl)")
    if owner is not None and info.st_uid != owner:
        return (f"{path} belongs to {_user_name(info.st_uid)}, not to {_user_name(owner)} who "
                "runs mattectl: use a folder of mattectl's own, or chown it")
    return None


def _user_name(uid: int) -> str:
    try:
        return f"user {pwd.getpwuid(uid).pw_name}"
    except KeyError:
        return f"uid {uid}"


def _check_state_dir(settings: Settings) -> Iterator[tuple[str, str]]:
    # Its owner is the daemon's question (mattectl.app.prepare_state_dir): `config check` and
    # `status` may run as another user than the service's (root, an admin).
    path = settings.daemon.state_dir
    try:
        info = os.lstat(path)
    except OSError:
        return  # missing (created at start), or not this user's to look at
    if problem := state_dir_problem(info, path):
        yield "daemon.state_dir", problem


def _check_gpu(settings: Settings) -> Iterator[tuple[str, str]]:
    if settings.models.require_gpu and settings.models.device == "cpu":
        yield "models.require_gpu", "cannot be true while models.device = 'cpu'"


def _check_timeouts(settings: Settings) -> Iterator[tuple[str, str]]:
    # A hung inference process must be killed (and the job retried) before the daemon itself
    # counts as hung and systemd restarts all of it.
    models, limit = settings.models, settings.daemon.job_timeout_s
    if models.isolation == "process" and models.load_timeout_s + models.predict_timeout_s >= limit:
        yield "models.predict_timeout_s", (
            f"load_timeout_s + predict_timeout_s ({models.load_timeout_s:.0f} + "
            f"{models.predict_timeout_s:.0f} s) must stay under daemon.job_timeout_s "
            f"({limit:.0f} s)")


def _check_outputs(settings: Settings) -> Iterator[tuple[str, str]]:
    for i, watch in enumerate(settings.watch):
        options = watch.output_options
        ext = template_extension(watch.output_template)
        if ext in IMAGE_EXTENSIONS and not options.accepts_extension(ext):
            yield f"watch[{i}].output_template", (
                f"ends in .{ext} but output_format is {options.format}: end it in "
                f".{options.extension}, or leave the extension out")


def _check_web(settings: Settings) -> Iterator[tuple[str, str]]:
    host, _port = settings.web.address
    if settings.web.enabled and not settings.web.token and not is_loopback(host):
        yield "web.listen", (
            f"{host} is reachable from other computers, and web.token = false would let any "
            "of them act: set web.token = true (the default), or listen on 127.0.0.1")


def _check_rules(settings: Settings) -> Iterator[tuple[str, str]]:
    # Whether the named preset exists and is valid is mattectl.checks.check_presets' question.
    for i, watch in enumerate(settings.watch):
        if watch.rules is None and watch.latency_budget_ms is not None:
            yield f"watch[{i}].latency_budget_ms", "only used with `rules` (a preset)"
        if watch.rules is not None and "model" in watch.model_fields_set:
            yield f"watch[{i}].model", "set `model` (a fixed model) or `rules`, not both"


def _check_database(settings: Settings) -> Iterator[tuple[str, str]]:
    database = settings.database
    if database.url is not None and database.url_file is not None:
        yield "database.url_file", "set url or url_file, not both"
    elif database.url_file is not None:
        try:
            read_url_file(database.url_file)
        except ConfigError as exc:
            yield from exc.problems


CHECKS: tuple[Check, ...] = (
    check_drop_folders,
    _check_database,
    _check_state_dir,
    _check_folders,
    _check_unique,
    _check_gpu,
    _check_timeouts,
    _check_outputs,
    _check_rules,
    _check_web,
)


# -- loading ---------------------------------------------------------------------------------------

def _apply_env(data: dict[str, Any]) -> dict[str, Any]:
    for env, section, key in (
        (ENV_MODELS_DIR, "models", "dir"),
        (ENV_STATE_DIR, "daemon", "state_dir"),
    ):
        if value := os.environ.get(env):
            section_data = data.setdefault(section, {})
            if isinstance(section_data, dict):
                section_data[key] = os.path.abspath(os.path.expanduser(value))
    if url := os.environ.get(ENV_DATABASE_URL):
        database = data.setdefault("database", {})
        if isinstance(database, dict):  # the environment wins over the file's url and url_file
            database.pop("url_file", None)
            database["url"] = url
    if os.environ.get(ENV_ALLOW_ROOT, "").lower() in ("1", "true", "yes"):
        daemon = data.setdefault("daemon", {})
        if isinstance(daemon, dict):
            daemon["allow_root"] = True
    return data


def parse(
    data: dict[str, Any], *, source: str = "<config>", base_dir: Path | None = None,
    models: Collection[str] | None = None, checks: Sequence[Check] = CHECKS,
) -> Settings:
    """Validate a config tree (as read from TOML) and run ``checks``, the cross-field checks.
    Model names must be among ``models``; any name passes without it (see mattectl.checks)."""
    base = base_dir or Path.cwd()
    context = {"base_dir": base, MODEL_NAMES: models}
    try:
        settings = Settings.model_validate(_apply_env(data), context=context)
    except ValidationError as exc:
        raise ConfigError(source, validation_problems(exc)) from None
    problems = [problem for check in checks for problem in check(settings)]
    if problems:
        raise ConfigError(source, problems)
    return settings


def default_path() -> Path:
    return Path(os.environ.get(ENV_CONFIG, DEFAULT_CONFIG))


def load(
    path: Path | str | None = None, *, models: Collection[str] | None = None,
    checks: Sequence[Check] = CHECKS,
) -> Settings:
    """Read and validate a config file (default: $MATTECTL_CONFIG, else /etc/mattectl/...);
    ``models`` and ``checks`` as in :func:`parse`."""
    path = Path(path) if path is not None else default_path()
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(str(path), [("", "config file not found")]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [("", f"not valid TOML: {exc}")]) from None
    except OSError as exc:
        raise ConfigError(str(path), [("", f"cannot read: {exc.strerror}")]) from None
    settings = parse(data, source=str(path), base_dir=path.resolve().parent, models=models,
                     checks=checks)
    return settings.model_copy(update={"source": path.resolve()})
