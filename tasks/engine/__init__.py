"""The fine-tuning engine: one training loop for every task (tasks supply model, data, loss, metrics)."""

from .config import ENGINE_DEFAULTS, ConfigError, load_config
from .parts import TrainParts
from .trainer import NonFiniteLossError, train

__all__ = ["ENGINE_DEFAULTS", "ConfigError", "load_config", "TrainParts", "NonFiniteLossError", "train"]
