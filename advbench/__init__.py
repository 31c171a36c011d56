"""advbench: benchmark the adversarial robustness of PyTorch image classifiers."""

__version__ = "0.1.0"
