"""Registered models, as data: paper name -> architecture, defaults and recipe (see docs/zoo.md).

Training-time noise (`noise_sigma`) acts in train mode only; evaluation is noise-free.
"""

from __future__ import annotations

from typing import Any

from advbench.models.alexnet import AlexNet
from advbench.models.hah import VGG16
from advbench.models.kap_table import KAP_ROWS
from advbench.models.pni import ResNet20
from advbench.models.polarize import MadryCNN, PolarizingFrontEnd
from advbench.models.preact_resnet import PreActResNet18
from advbench.models.registry import MODELS, ModelSpec
from advbench.models.schedules import (
    ADAM,
    ALEXNET_CPU,
    AT_CPU,
    CPNI,
    DISSERTATION,
    MADRY_CNN_ADAM,
    RN8,
    SMOOTH,
    SMOOTH_NORMAL_EPOCHS,
    STRIDE,
    TABLE41_AT,
    smooth_schedule,
)
from advbench.models.smoothing import Smoothing
from advbench.models.sparse_coding import SparseCodingFrontEnd

VARIANTS: list[tuple] = [
    # name, architecture, family, paper, description, default kwargs, recipe, CPU training overrides
    *KAP_ROWS,
    (
        "preact-rn18",
        PreActResNet18,
        "baseline",
        STRIDE,
        "PreActResNet18, strides 1-2-2-2",
        {},
        "normal",
        RN8,
    ),
    (
        "preact-rn18-s1122",
        PreActResNet18,
        "stride",
        STRIDE,
        "PreActResNet18 with stage strides 1-1-2-2 (Table IV)",
        {"strides": [1, 1, 2, 2]},
        "normal",
        RN8,
    ),
    (
        "vgg16",
        VGG16,
        "baseline",
        STRIDE,
        "VGG16 (weight-normalized convs), max-pool after every stage (2-2-2-2-2)",
        {},
        "normal",
        RN8,
    ),
    (
        "vgg16-s11222",
        VGG16,
        "stride",
        STRIDE,
        "VGG16 without the first two downsamplings (1-1-2-2-2, Table IV)",
        {"strides": [1, 1, 2, 2, 2]},
        "normal",
        RN8,
    ),
    (
        "alexnet",
        AlexNet,
        "baseline",
        STRIDE,
        "AlexNet with adaptive average pooling after the conv part, downsamplings 2-2-2-2 (App. B)",
        {},
        "normal",
        ALEXNET_CPU,
    ),
    (
        "alexnet-s1122",
        AlexNet,
        "stride",
        STRIDE,
        "AlexNet with downsamplings 1-1-2-2 (Table IV)",
        {"strides": [1, 1, 2, 2]},
        "normal",
        ALEXNET_CPU,
    ),
    (
        "hah-vgg16",
        VGG16,
        "hebbian",
        DISSERTATION,
        "VGG16 whose first 6 blocks are HaH blocks (weight-norm conv, ReLU, divisive norm sigma=0.1, keep top 20%), HaH loss K=10%, lambda=0.1 (Ch. 5)",
        {"hah_blocks": 6},
        "hah",
        RN8,
    ),
    (
        "madry-cnn",
        MadryCNN,
        "baseline",
        DISSERTATION,
        "Madry et al. MNIST CNN (2 conv 32/64 5x5 + max-pool, FC 1024), the polarizer's base (§4.1.4)",
        {},
        "normal",
        MADRY_CNN_ADAM,
    ),
    (
        "madry-cnn-at",
        MadryCNN,
        "adversarial-training",
        DISSERTATION,
        "Madry CNN with PGD adversarial training (Table 4.1 'Adv. Training')",
        {},
        "pgd-at",
        TABLE41_AT,
    ),
    (
        "madry-cnn-fast-at",
        MadryCNN,
        "adversarial-training",
        DISSERTATION,
        "Madry CNN with RFGSM / Fast-AT (the dissertation's single-step baseline)",
        {},
        "fast-at",
        AT_CPU,
    ),
    (
        "madry-cnn-trades",
        MadryCNN,
        "adversarial-training",
        DISSERTATION,
        "Madry CNN with TRADES (lambda=1/6, i.e. beta=6)",
        {},
        "trades",
        AT_CPU,
    ),
    (
        "pfe-madry",
        PolarizingFrontEnd,
        "front-end",
        DISSERTATION,
        "Polarizing front end: L1-normalized 5x5 filters, ternary quantizer (c=0.3) with a tanh BPDA surrogate, then the Madry CNN (§4.1)",
        {"threshold": 0.3},
        "polarizer",
        {
            "epochs": 60,
            "max_train": None,
            **ADAM,
            "normalize": False,
            "model_kwargs": {"filters": 16},
        },
    ),
    (
        "sc-frontend",
        SparseCodingFrontEnd,
        "front-end",
        DISSERTATION,
        "Sparse-coding front end: 500-atom 4x4 patch dictionary, top-50, dropout 0.95 at test time, dead-zone quantizer (beta=3), decoder, ensemble of 10 (§4.2)",
        {},
        "sparse-coding",
        {
            "epochs": 1,
            "max_train": 20000,
            "normalize": False,
            "model_kwargs": {
                "input_size": 28,
                "atoms": 64,
                "top_t": 8,
                "decoder_channels": 16,
                "classifier_width": 8,
                "eps": 0.1,
            },
        },
    ),
    # The non-random encoder is the dissertation's T = 15 model (Table 4.5, chosen from Table B.1);
    # on Fashion-MNIST's 1 x 4 x 4 patches the CPU recipe keeps App. B.3's rule L = 10 x the patch
    # dimension (160 atoms) and T = 15. Attacks route gradients through the top U = 2T = 30.
    (
        "sc-frontend-nodrop",
        SparseCodingFrontEnd,
        "front-end",
        DISSERTATION,
        "Sparse-coding front end without dropout (the non-random encoder, §4.2.2.3), T=15, attacked through the top U=2T (Table 4.5)",
        {"dropout": 0.0, "top_t": 15},
        "sparse-coding",
        {
            "epochs": 1,
            "max_train": 20000,
            "normalize": False,
            "model_kwargs": {
                "input_size": 28,
                "atoms": 160,
                "top_t": 15,
                "decoder_channels": 16,
                "classifier_width": 8,
                "eps": 0.1,
            },
        },
    ),
    *[
        (
            f"smooth-{loss}{suffix}",
            MadryCNN,
            "smooth-kernels",
            SMOOTH,
            f"2 conv + 2 FC net, {what} loss{' + lambda R(w), lambda=' + str(lam) if lam else ''} (§3-4, {'§4.1 four-shapes check' if lam < 0 else 'Table 1'} '{(loss + suffix).upper()}')",
            {"hidden": 128},
            recipe,
            {"smooth_lambda": lam, **ADAM, **smooth_schedule(recipe, lam)},
        )
        for loss, what, recipe in (
            ("v", "vanilla cross-entropy", "normal"),
            ("t", "TRADES", "trades"),
            ("a", "adversarial training", "pgd-at"),
            ("l", "KL logit pairing", "kl-pairing"),
        )
        for suffix, lam in (("", 0.0), ("r", 100.0), ("h", -100.0))
    ],
    # The paper's lambda grid on VR (the cheapest loss to train): which lambda its Table 1 used is
    # not reported, so the sweep shows what each value does on the bounded and unbounded readings.
    *[
        (
            f"smooth-vr-lambda{tag}",
            MadryCNN,
            "smooth-kernels",
            SMOOTH,
            f"2 conv + 2 FC net, vanilla cross-entropy loss + lambda R(w), lambda={lam} (§4's lambda grid on Table 1 'VR')",
            {"hidden": 128},
            "normal",
            {"smooth_lambda": lam, **ADAM, "epochs": SMOOTH_NORMAL_EPOCHS},
        )
        for tag, lam in (("0p01", 0.01), ("0p1", 0.1), ("1", 1.0), ("10", 10.0))
    ],
    (
        "rn20",
        ResNet20,
        "baseline",
        CPNI,
        "ResNet-20, the CPNI paper's CIFAR-10 base model",
        {},
        "normal",
        RN8,
    ),
    *[
        (name, ResNet20, "noise-injection", CPNI, what, kwargs, "cpni-at", {**RN8, **AT_CPU})
        for name, what, kwargs in (
            (
                "pni-w",
                "ResNet-20 with parametric white noise on every conv's weights, adversarially trained (PNI-W, He et al.)",
                {"noise": "weights"},
            ),
            (
                "pni-a",
                "ResNet-20 with parametric white noise on activations, adversarially trained (PNI-A-a)",
                {"noise": "activations"},
            ),
            (
                "cpni-w",
                "ResNet-20 with colored weight noise, covariance D + L^T L, rank 5 (CPNI-W, §4.4)",
                {"noise": "weights", "colored_rank": 5},
            ),
            (
                "cpni-a",
                "ResNet-20 with colored activation noise over channels, rank 5 (CPNI-A)",
                {"noise": "activations", "colored_rank": 5},
            ),
        )
    ],
]


def smoothed_cpni_w(
    mode: str = "prediction",
    sigma: float = 0.25,
    samples: int = 8,
    weight_c: float | None = None,
    **kwargs: Any,
) -> Smoothing:
    """CPNI-W ResNet-20 under smoothed inference (§3); sigma in the network's (normalized) input units."""
    return Smoothing(
        ResNet20(noise="weights", colored_rank=5, **kwargs),
        sigma=sigma,
        samples=samples,
        mode=mode,
        weight_c=weight_c,
    )


# Smoothing changes inference only: these cards reuse cpni-w's trained weights (0 epochs).
SMOOTHED_FROM_CPNI_W = {"init_from": "cpni-w", "epochs": 0, "model_kwargs": {"width": 8}}
VARIANTS += [
    (
        f"cpni-w-smooth-{mode}",
        smoothed_cpni_w,
        "smoothing",
        CPNI,
        f"CPNI-W ResNet-20 with {mode} smoothing at inference (M=8, sigma=0.25; §3, eq. {eq})",
        {"mode": mode},
        "cpni-at",
        SMOOTHED_FROM_CPNI_W,
    )
    for mode, eq in (("prediction", 8), ("soft", 9), ("weighted", 11))
] + [
    (
        "cpni-w-epgd",
        smoothed_cpni_w,
        "smoothing",
        CPNI,
        "CPNI-W fine-tuned with EPGD adversarial training (gradients averaged over 8 noise draws), prediction smoothing (§4)",
        {"mode": "prediction"},
        "epgd",
        {**SMOOTHED_FROM_CPNI_W, **AT_CPU, "max_train": 5000},
    ),
    (
        "cpni-w-gauss",
        smoothed_cpni_w,
        "smoothing",
        CPNI,
        "CPNI-W fine-tuned with 'Gauss' training: Gaussian noise plus, with probability q, a PGD perturbation (eq. 22), prediction smoothing",
        {"mode": "prediction"},
        "gauss",
        {**SMOOTHED_FROM_CPNI_W, **AT_CPU, "max_train": 10000},
    ),
]

for _name, _arch, _family, _paper, _description, _defaults, _recipe, _cpu in VARIANTS:
    MODELS.add(
        _name,
        ModelSpec(
            _name,
            _arch,
            _family,
            _paper,
            _description,
            recipe=_recipe,
            defaults=_defaults,
            cpu_train=_cpu,
        ),
    )
