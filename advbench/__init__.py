"""advbench: benchmark the adversarial robustness of PyTorch image classifiers.

    import advbench
    result = advbench.evaluate(model, x, y, threat="linf:0.1")   # any nn.Module, images in [0,1]
    result.robust_accuracy, result.verdict, result.robust        # per eps, reliable?, per sample
    advbench.certify(model, x, y, sigma=0.25)                     # Cohen et al.'s certified radii

The names load on first use, so `import advbench` (and the CLI) starts without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from advbench.core.version import __version__

if TYPE_CHECKING:
    from advbench.core.threat import ThreatModel
    from advbench.engine.one_call import Certification, Evaluation, certify, evaluate

__all__ = ["Certification", "Evaluation", "ThreatModel", "__version__", "certify", "evaluate"]


def __getattr__(name: str) -> Any:
    if name in ("evaluate", "certify", "Evaluation", "Certification"):
        from advbench.engine import one_call

        return getattr(one_call, name)
    if name == "ThreatModel":
        from advbench.core.threat import ThreatModel

        return ThreatModel
    raise AttributeError(f"module 'advbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
