"""Registered models, as data: paper name -> architecture, defaults and recipe (see docs/zoo.md).

Training-time noise (`noise_sigma`) acts in train mode only; evaluation is noise-free.
"""

from __future__ import annotations

from advbench.models.cnn import ShallowCNN
from advbench.models.hah import VGG16
from advbench.models.pni import ResNet20
from advbench.models.polarize import MadryCNN, PolarizingFrontEnd
from advbench.models.preact_resnet import PreActResNet18
from advbench.models.registry import MODELS, ModelSpec
from advbench.models.smoothing import Smoothing
from advbench.models.sparse_coding import SparseCodingFrontEnd
from advbench.models.resnet import ResNet18

KAP = "KAP (Bashivan et al.)"
STRIDE = "Larger feature maps (stride/upsampling)"
DISSERTATION = "Structural defenses (dissertation)"
CPNI = "Smoothed inference (CPNI)"
KAP_NOISE = {"noise_sigma": 0.1}
KAP_2D = {"kernel_pool": "avg", "pool_kernel": 3, "pool_dims": 2}

VARIANTS: list[tuple] = [
    # name, architecture, family, paper, description, default kwargs
    ("rn18-nt", ResNet18, "baseline", KAP, "ResNet18, normal training (RN18-NT)", {}),
    ("rn18-nt-noise", ResNet18, "noise", KAP, "ResNet18, Gaussian noise on the input and after every conv while training (RN18-NT(sigma))", KAP_NOISE),
    ("kap-rn18", ResNet18, "kernel-pooling", KAP, "ResNet18, 2D kernel average pooling (K=3, S=1) after every conv, noise training (RN18-KAP-NT)", {**KAP_2D, **KAP_NOISE}),
    ("rn18-at", ResNet18, "adversarial-training", KAP, "ResNet18, PGD adversarial training (Madry et al.; the KAP paper's AT baseline)", {}, "pgd-at"),
    ("kap-rn18-nonoise", ResNet18, "kernel-pooling", KAP, "ResNet18 with 2D KAP (K=3), no training noise (Fig. 5a)", KAP_2D),
    ("kmp-rn18", ResNet18, "kernel-pooling", KAP, "ResNet18, 2D kernel max pooling (K=3) after every conv, noise training (RN18-KMP, Fig. 5b)", {**KAP_2D, "kernel_pool": "max", **KAP_NOISE}),
    ("rn18widex4-kap", ResNet18, "kernel-pooling", KAP, "ResNet18 with 4x kernels per conv and 2D KAP (K=3), noise training (RN18WideX4-KAP-NT)", {**KAP_2D, **KAP_NOISE, "width": 256}),
    *[
        (f"{'kap-' if kap else ''}cnn{d}", ShallowCNN, "kernel-pooling" if kap else "baseline", KAP,
         f"{d}-layer CNN (conv-BN-ReLU){' with 2D KAP (K=3) after each conv' if kap else ''}, noise training (§4.2)",
         {"depth": d, **(KAP_2D if kap else {}), **KAP_NOISE})
        for d in (1, 2, 3) for kap in (False, True)
    ],
    *[
        (f"rn18-s{''.join(map(str, s))}", ResNet18, "stride", STRIDE, f"ResNet18 with stage strides {'-'.join(map(str, s))} (§IV-B)", {"strides": list(s)})
        for s in ((1, 1, 2, 2), (2, 2, 2, 2), (1, 1, 1, 2), (1, 2, 1, 2))
    ],
    ("rn18-s1122-maxhead", ResNet18, "stride", STRIDE, "ResNet18 1-1-2-2 with max instead of average pooling before the classifier (§V-C)", {"strides": [1, 1, 2, 2], "head_pool": "max"}),
    *[
        (f"rn18-up{f}x-{mode}", ResNet18, "upsampling", STRIDE, f"ResNet18 on inputs upsampled {f}x by {mode} interpolation (§IV-A)", {"upsample": f, "upsample_mode": mode})
        for f in (2, 3) for mode in ("nearest", "bilinear")
    ],
    ("preact-rn18", PreActResNet18, "baseline", STRIDE, "PreActResNet18, strides 1-2-2-2", {}),
    ("preact-rn18-s1122", PreActResNet18, "stride", STRIDE, "PreActResNet18 with stage strides 1-1-2-2 (Table IV)", {"strides": [1, 1, 2, 2]}),
    ("vgg16", VGG16, "baseline", STRIDE, "VGG16 (weight-normalized convs), max-pool after every stage (2-2-2-2-2)", {}),
    ("vgg16-s11222", VGG16, "stride", STRIDE, "VGG16 without the first two downsamplings (1-1-2-2-2, Table IV)", {"strides": [1, 1, 2, 2, 2]}),
    ("hah-vgg16", VGG16, "hebbian", DISSERTATION, "VGG16 whose first 6 blocks are HaH blocks (weight-norm conv, ReLU, divisive norm sigma=0.1, keep top 20%), HaH loss K=10%, lambda=0.1 (Ch. 5)",
     {"hah_blocks": 6}, "hah"),
    ("rn20", ResNet20, "baseline", CPNI, "ResNet-20, the CPNI paper's CIFAR-10 base model", {}),
    ("pni-w", ResNet20, "noise-injection", CPNI, "ResNet-20 with parametric white noise on every conv's weights (PNI-W, He et al.)", {"noise": "weights"}, "cpni-at"),
    ("cpni-w", ResNet20, "noise-injection", CPNI, "ResNet-20 with colored weight noise, covariance D + L^T L, rank 5 (CPNI-W, §4.4)", {"noise": "weights", "colored_rank": 5}, "cpni-at"),
    ("cpni-a", ResNet20, "noise-injection", CPNI, "ResNet-20 with colored activation noise over channels, rank 5 (CPNI-A)", {"noise": "activations", "colored_rank": 5}, "cpni-at"),
    ("sc-frontend", SparseCodingFrontEnd, "front-end", DISSERTATION, "Sparse-coding front end: 500-atom 4x4 patch dictionary, top-50, dropout 0.95 at test time, dead-zone quantizer (beta=3), decoder, ensemble of 10 (§4.2)",
     {}, "sparse-coding"),
    ("sc-frontend-nodrop", SparseCodingFrontEnd, "front-end", DISSERTATION, "Sparse-coding front end without dropout (the non-random encoder, §4.2.2.3)", {"dropout": 0.0}, "sparse-coding"),
    ("madry-cnn-at", MadryCNN, "adversarial-training", DISSERTATION, "Madry CNN with PGD adversarial training (Table 4.1 'Adv. Training')", {}, "pgd-at"),
    ("madry-cnn", MadryCNN, "baseline", DISSERTATION, "Madry et al. MNIST CNN (2 conv 32/64 5x5 + max-pool, FC 1024), the polarizer's base (§4.1.4)", {}),
    ("pfe-madry", PolarizingFrontEnd, "front-end", DISSERTATION, "Polarizing front end: L1-normalized 5x5 filters, ternary quantizer (c=0.3) with a tanh BPDA surrogate, then the Madry CNN (§4.1)",
     {"threshold": 0.3}, "polarizer"),
]



def smoothed_cpni_w(mode: str = "prediction", sigma: float = 0.25, samples: int = 8, weight_c: float | None = None, **kwargs: object) -> Smoothing:
    """CPNI-W ResNet-20 under smoothed inference (§3); sigma in the network's (normalized) input units."""
    return Smoothing(ResNet20(noise="weights", colored_rank=5, **kwargs), sigma=sigma, samples=samples, mode=mode, weight_c=weight_c)


VARIANTS += [
    (f"cpni-w-smooth-{mode}", smoothed_cpni_w, "smoothing", CPNI, f"CPNI-W ResNet-20 with {mode} smoothing at inference (M=8, sigma=0.25; §3, eq. {eq})", {"mode": mode}, "cpni-at")
    for mode, eq in (("prediction", 8), ("soft", 9), ("weighted", 11))
]

for _name, _arch, _family, _paper, _description, _defaults, *_recipe in VARIANTS:
    MODELS.add(_name, ModelSpec(_name, _arch, _family, _paper, _description, recipe=_recipe[0] if _recipe else "normal", defaults=_defaults))
