"""Training: the config, the loop, the papers' recipes, partial adversarial training. Sits above models and attacks.

Imports go one way: config <- recipes <- loop <- partial (stages, adversary, augment and
smooth_kernels are leaves the recipes and the loop use).
"""

from advbench.train.config import (
    TrainConfig,
    config_for,
    merge_overrides,
    option_rows,
    parse_options,
)
from advbench.train.loop import EpochLog, train_model
from advbench.train.partial import train_partial
from advbench.train.recipes import RECIPES

__all__ = [
    "RECIPES",
    "EpochLog",
    "TrainConfig",
    "config_for",
    "merge_overrides",
    "option_rows",
    "parse_options",
    "train_model",
    "train_partial",
]
