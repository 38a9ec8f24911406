"""Configuration, resolved in one place: flag > environment variable > config file > default.

The config file is `config.toml` in the archive directory. Environment variables are
`MEMES_` + the setting's name in upper case (`MEMES_CLIP_MODEL`); `MEMES_ARCHIVE` moves the whole
archive, so tests and demos never touch a user's data.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping

from .errors import ConfigError

CONFIG_FILE = "config.toml"

# Image model presets: (open_clip architecture, pretrained tag).
# quality: ViT-B-16-SigLIP scores 82.0 nDCG@10 on MIEB's HatefulMemes text->image retrieval
# against 58.5 for ViT-B-32 laion2b, at about 3x the FLOPs; on this tool's CPU pipeline OCR is
# the slowest stage, so the better model costs little end to end (see README, "Choosing models").
CLIP_PRESETS = {
    "quality": ("ViT-B-16-SigLIP", "webli"),
    "fast": ("ViT-B-32", "laion2b_s34b_b79k"),
}
DEFAULT_TEXT_MODEL = "all-MiniLM-L6-v2"


def default_archive_dir() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir("memes", appauthor=False))


@dataclass(frozen=True)
class Config:
    """Every setting the tool reads. Paths are absolute once resolved."""

    archive: Path
    clip_model: str = "quality"
    clip_pretrained: str | None = None
    clip_checkpoint: Path | None = None
    text_model: str = DEFAULT_TEXT_MODEL
    ocr_languages: str = "eng"
    ocr_engines: str = "rapidocr,tesseract"  # comma-separated, each reading kept (indexer.ocr)
    workers: int = max(1, os.cpu_count() or 1)
    batch_size: int = 16
    max_image_pixels: int = 64_000_000
    group_reposts: bool = True  # an altered copy of a meme becomes a sighting of it (archive.likeness)
    # every meme's record file in the archive's records/, so `memes rebuild` can make the catalog
    # anew from records and images (archive.recordsdir); SQLite archives only
    keep_records: bool = True
    # copies of the query-side models (text model, image model's text tower) exported to ONNX in
    # the archive's models/, so a search starts without PyTorch (indexer.queryencoders)
    fast_queries: bool = True
    # a command searches an archive whose vector spaces hold at most this many vectors by an exact
    # scan of the catalog's copies, without opening Chroma (bench/cli_latency.py); 0: always Chroma
    exact_scan_limit: int = 20_000
    # after a search, keep a resident process with the models loaded for this many idle minutes;
    # later searches answer through it in a fraction of a second (memes.resident); 0: none
    resident_minutes: float = 0.0
    # Servers, for archives bigger than one machine (README, "Bigger archives"); empty: embedded
    records_url: str = ""  # postgresql://USER[:PASSWORD]@HOST:PORT/DB; empty: SQLite in the archive dir
    chroma_url: str = ""  # http(s)://HOST:PORT of a `chroma run` server; empty: Chroma embedded
    chroma_database: str = "memes"  # the database on the Chroma server (made when missing)
    chroma_token: str = ""  # sent as `Authorization: Bearer TOKEN` (to a proxy in front of Chroma)
    # Vision-LLM annotation through Ollama
    annotate: bool = True
    ollama_host: str = "http://127.0.0.1:11434"  # several: comma-separated; env OLLAMA_HOST too
    annotate_concurrency: int = 4
    annotate_timeout: float = 300.0
    annotate_retries: int = 3
    annotate_backoff: float = 1.0
    annotate_image_side: int = 1024
    keep_alive: str = "30m"
    annotators: tuple[tuple[str, str, str], ...] = ()  # (kind, model, prompt); empty: the defaults

    @property
    def ocr_engine_names(self) -> list[str]:
        return [e.strip() for e in self.ocr_engines.split(",") if e.strip()]

    @property
    def servers_only(self) -> bool:
        """Records and vectors both on servers: nothing shared lives in the archive directory,
        so several processes (and machines) may write at once."""
        return bool(self.records_url and self.chroma_url)

    @property
    def ollama_hosts(self) -> list[str]:
        return [h.strip() for h in self.ollama_host.split(",") if h.strip()]

    @property
    def clip_architecture(self) -> tuple[str, str | None]:
        """(architecture, pretrained tag or None), presets expanded."""
        if self.clip_model in CLIP_PRESETS:
            arch, tag = CLIP_PRESETS[self.clip_model]
            return arch, self.clip_pretrained or tag
        return self.clip_model, self.clip_pretrained


_PATHS = {"archive", "clip_checkpoint"}
_INTS = {"workers", "batch_size", "max_image_pixels", "annotate_concurrency", "annotate_retries",
         "annotate_image_side", "exact_scan_limit"}
_FLOATS = {"annotate_timeout", "annotate_backoff", "resident_minutes"}
_BOOLS = {"annotate", "group_reposts", "keep_records", "fast_queries"}
_ALIASES = {"ollama_host": "OLLAMA_HOST"}  # the variable Ollama's own tools read


def _convert(name: str, value: Any, base: Path | None) -> Any:
    if value is None or value == "":
        return None
    if name in _PATHS:
        path = Path(os.path.expanduser(str(value)))
        return (base / path if base and not path.is_absolute() else path).resolve()
    if name in _BOOLS:
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    if name == "annotators":
        return _annotators(value)
    if name in _FLOATS:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if name in _INTS:
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a whole number, got {value!r}") from None
        least = 0 if name in ("annotate_retries", "exact_scan_limit") else 1
        if number < least:
            raise ConfigError(f"{name} must be at least {least}, got {number}")
        return number
    return str(value)


def _annotators(value: Any) -> tuple[tuple[str, str, str], ...]:
    """`[[annotators]]` tables with kind, model and prompt."""
    if not isinstance(value, list):
        raise ConfigError("annotators must be a list of tables with kind, model and prompt")
    specs = []
    for n, item in enumerate(value, start=1):
        if not isinstance(item, dict) or not all(isinstance(item.get(k), str) and item.get(k)
                                                 for k in ("kind", "model", "prompt")):
            raise ConfigError(f"annotator {n}: needs kind, model and prompt (non-empty strings)")
        specs.append((item["kind"], item["model"], item["prompt"]))
    return tuple(specs)


def _read_file(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: {exc}") from None
    known = {f.name for f in fields(Config)} - {"archive"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown setting(s): {', '.join(unknown)}")
    return data


def resolve_config(flags: Mapping[str, Any] | None = None,
                   environ: Mapping[str, str] | None = None) -> Config:
    """Build the Config from flags (None means not given), the environment and the file."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    environ = os.environ if environ is None else environ
    archive = flags.get("archive") or environ.get("MEMES_ARCHIVE") or default_archive_dir()
    config = Config(archive=_convert("archive", archive, Path.cwd()))
    from_file = _read_file(config.archive / CONFIG_FILE)
    settings: dict[str, Any] = {}
    for f in fields(Config):
        if f.name == "archive":
            continue
        env_names = ["MEMES_" + f.name.upper()] + ([_ALIASES[f.name]] if f.name in _ALIASES else [])
        from_env = next((environ[n] for n in env_names if environ.get(n)), None)
        if f.name in flags:
            settings[f.name] = _convert(f.name, flags[f.name], Path.cwd())
        elif from_env is not None and f.name != "annotators":
            settings[f.name] = _convert(f.name, from_env, Path.cwd())
        elif f.name in from_file:
            settings[f.name] = _convert(f.name, from_file[f.name], config.archive)
    return replace(config, **settings)
