"""Building blocks, architectures, the wrapper, model cards and checkpoints. Knows nothing of attacks."""

# The model table registers the papers' models; importing advbench.models makes them available.
from advbench.models import table  # noqa: E402,F401
from advbench.models.registry import MODELS, ModelSpec, register_model
from advbench.models.wrapper import RobustModel

__all__ = ["MODELS", "ModelSpec", "RobustModel", "register_model"]
