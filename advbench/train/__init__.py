"""Training recipes. Adversarial recipes (later) call attacks; this layer sits above models."""

from advbench.train.loop import TrainConfig, train_model

__all__ = ["TrainConfig", "train_model"]
