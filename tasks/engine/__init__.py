"""The fine-tuning engine: one training loop for every task (tasks supply model, data, loss, metrics)."""

from ..training import TrainParts
from .config import ENGINE_DEFAULTS, ENGINE_SCHEMA, ConfigError, load_config, resolve_config
from .errors import DiskFullError, NonFiniteLossError, ResumeMismatchError, RunExistsError, TrainingStopped
from .trainer import train

__all__ = [
    "ENGINE_DEFAULTS",
    "ENGINE_SCHEMA",
    "ConfigError",
    "DiskFullError",
    "NonFiniteLossError",
    "ResumeMismatchError",
    "RunExistsError",
    "TrainParts",
    "TrainingStopped",
    "load_config",
    "resolve_config",
    "train",
]
