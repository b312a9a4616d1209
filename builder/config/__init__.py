"""build.toml: the typed model, parsing with editions, validation and migration."""

from .model import BuildConfig, General, Kernel, NoarchFramework, TorchFramework, TvmFfiFramework
from .parse import load_config, parse_document, read_toml

__all__ = [
    "BuildConfig",
    "General",
    "Kernel",
    "NoarchFramework",
    "TorchFramework",
    "TvmFfiFramework",
    "load_config",
    "parse_document",
    "read_toml",
]
