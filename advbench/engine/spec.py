"""What a run measures (`EvalSpec`, `CertifySpec`) and where and how it runs (`Runtime`).

A spec is the scientific question: model, data subset, threats, attacks, seed. Together with
the checkpoint and subset hashes the plan resolves, it is the run's identity in the store.
The runtime is where and how a run executes: device, database, model zoo, data folder, batch
size, `fresh`, Ray, TF32. None of it changes a result on one device class; the device class
(cpu or cuda) and TF32 can, through floating-point rounding, so the run key records both and runs
never resume across them (docs/gpu.md). Both validate their values on construction, so a bad value
is one clear error before anything heavy is loaded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

from advbench.core.errors import UsageError
from advbench.core.threat import parse_norm
from advbench.store import DEFAULT_DB

DEVICE_HELP = "auto, cpu or cuda[:N]"


def _check_device(name: str) -> None:
    lowered = name.lower()
    if (
        lowered in ("auto", "cpu")
        or lowered == "cuda"
        or (lowered.startswith("cuda:") and lowered[5:].isdigit())
    ):
        return
    raise UsageError(f"unknown device {name!r}; use {DEVICE_HELP}")


def _positive(name: str, value: int | None) -> None:
    if value is not None and value <= 0:
        raise UsageError(f"{name} must be positive, got {value}")


def _seed(value: int) -> None:
    """Seeds are integers >= 0, as in suites and baselines (numpy refuses negative ones)."""
    if value < 0:
        raise UsageError(f"--seed must be an integer >= 0, got {value}")


@dataclass(frozen=True)
class Runtime:
    """Where and how a run executes; part of a run's identity only through the device class
    (cpu or cuda) its rows are computed on and, on CUDA, `tf32`.

    `batch_size` None lets each command pick its own default (256 images per evaluation
    batch, 1000 noisy copies per certification forward pass; on CUDA both as many as memory holds).
    `tf32` allows TF32 matmuls and convolutions on CUDA (faster, about 3 decimal digits); off, the
    determinism policy keeps full float32 (`core.device.deterministic`).
    """

    device: str = "auto"
    db: Path = DEFAULT_DB
    zoo: Path | None = None
    data_dir: Path | None = None
    batch_size: int | None = None
    fresh: bool = False
    ray: str | None = None
    tf32: bool = False

    def __post_init__(self) -> None:
        _check_device(self.device)
        _positive("--batch-size", self.batch_size)
        object.__setattr__(self, "db", Path(self.db))
        for name in ("zoo", "data_dir"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, Path(value))
        if self.ray is not None and not self.ray.strip():
            raise UsageError("--ray needs an address: local, auto, HOST:PORT or ray://HOST:PORT")

    def batch(self, default: int) -> int:
        return self.batch_size or default

    @property
    def zoo_str(self) -> str | None:
        return str(self.zoo) if self.zoo else None

    @property
    def data_dir_str(self) -> str | None:
        return str(self.data_dir) if self.data_dir else None


@dataclass(frozen=True)
class EvalSpec:
    """An evaluation: clean and robust accuracy of `model` under `attacks` at every eps."""

    model: str
    attacks: tuple[str, ...] = ("auto",)
    eps: tuple[float, ...] = (0.1,)
    norm: str = "linf"
    dataset: str = "fashion-mnist"
    split: str = "test"
    n: int | None = 1000  # None: the whole split
    seed: int = 0
    balanced: bool = False
    weights: str | None = None  # state dict of an external model (model = file:PATH.py:NAME)
    surrogate: str | None = None  # the model transfer attacks craft their examples on
    eot: int | None = (
        None  # EOT draws per gradient; None: 20 for models random at inference, else 1
    )
    bpda: bool = True  # route gradients through the model's BPDA surrogates
    checks: bool = True  # gradient-masking checks on a subset
    check_n: int = 100

    def __post_init__(self) -> None:
        object.__setattr__(self, "attacks", tuple(self.attacks))
        object.__setattr__(self, "eps", tuple(float(e) for e in self.eps))
        if not self.attacks:
            raise UsageError("give at least one --attack")
        if not self.eps:
            raise UsageError("give at least one --eps")
        if any(not math.isfinite(e) or e < 0 for e in self.eps):
            raise UsageError(
                f"eps must be finite numbers >= 0, got {', '.join(f'{e:g}' for e in self.eps)}"
            )
        parse_norm(self.norm)
        _positive("--n", self.n)
        _seed(self.seed)
        _positive("--check-n", self.check_n)
        if self.eot is not None and self.eot < 1:
            raise UsageError(f"--eot must be at least 1, got {self.eot}")


@dataclass(frozen=True)
class CertifySpec:
    """A certification: Cohen et al.'s CERTIFY/PREDICT per image and sigma."""

    model: str
    sigmas: tuple[float, ...] = (0.25,)
    n0: int = 100  # noise draws that pick the top class
    noise_draws: int = 100_000  # noise draws that bound its probability (Cohen et al.'s n)
    alpha: float = 0.001
    dataset: str = "fashion-mnist"
    split: str = "test"
    n: int | None = 500  # images, as `--n` everywhere; None: the whole split
    seed: int = 0
    balanced: bool = False
    weights: str | None = None
    adaptive_radius: float | None = (
        None  # sequential: stop each image once its decision at this L2 radius is settled
    )
    # Sequential certification (advbench.certification.sequential): noise_draws is each image's
    # cap; it stops once its answer at `radii` (empty: the whole curve, to `resolution`) is settled.
    sequential: bool = False
    radii: tuple[float, ...] = ()
    resolution: float = 0.01
    precision: str = "fp32"  # autocast dtype of the noisy forward passes

    def __post_init__(self) -> None:
        object.__setattr__(self, "sigmas", tuple(float(s) for s in self.sigmas))
        object.__setattr__(self, "radii", tuple(sorted({float(r) for r in self.radii})))
        if not self.sigmas:
            raise UsageError("give at least one --sigma")
        if any(not math.isfinite(s) or s <= 0 for s in self.sigmas):
            raise UsageError(
                f"--sigma must be positive numbers, got {', '.join(f'{s:g}' for s in self.sigmas)}"
            )
        _positive("--n0", self.n0)
        _positive("--noise-draws", self.noise_draws)
        _positive("--n", self.n)
        _seed(self.seed)
        if not (0 < self.alpha < 1):
            raise UsageError(f"--alpha must lie in (0, 1), got {self.alpha}")
        if self.adaptive_radius is not None and not (
            self.adaptive_radius > 0 and math.isfinite(self.adaptive_radius)
        ):
            raise UsageError(f"--radius must be a positive number, got {self.adaptive_radius}")
        if self.sequential and self.adaptive_radius is not None:
            raise UsageError(
                "--adaptive and --sequential are two sequential procedures; give one (--sequential --radius R does what --adaptive did, for any number of radii)"
            )
        if self.radii and not self.sequential:
            raise UsageError("--radius lists radii for --sequential (or one radius for --adaptive)")
        if any(not (math.isfinite(r) and r >= 0) for r in self.radii):
            raise UsageError(
                f"--radius must be finite numbers >= 0, got {', '.join(f'{r:g}' for r in self.radii)}"
            )
        if not (self.resolution > 0 and math.isfinite(self.resolution)):
            raise UsageError(f"--resolution must be a positive number, got {self.resolution}")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise UsageError(f"--precision must be fp32, bf16 or fp16, got {self.precision!r}")


def spec_dict(spec: EvalSpec | CertifySpec) -> dict[str, object]:
    """A spec as plain JSON-ready data (stored with the run)."""
    return {f.name: getattr(spec, f.name) for f in fields(spec)}
