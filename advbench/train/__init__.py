"""Training: the loop, the papers' recipes, and the smooth-kernel regularizer. Sits above models and attacks."""

from advbench.train.loop import TrainConfig, config_for, train_model
from advbench.train.recipes import RECIPES

__all__ = ["RECIPES", "TrainConfig", "config_for", "train_model"]
