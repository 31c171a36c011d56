"""Registered models, as data: paper name -> architecture, defaults and recipe (see docs/zoo.md).

Training-time noise (`noise_sigma`) acts in train mode only; evaluation is noise-free.
"""

from __future__ import annotations

from typing import Any

from advbench.models.alexnet import AlexNet
from advbench.models.cnn import ShallowCNN
from advbench.models.hah import VGG16
from advbench.models.pni import ResNet20
from advbench.models.polarize import MadryCNN, PolarizingFrontEnd
from advbench.models.preact_resnet import PreActResNet18
from advbench.models.registry import MODELS, ModelSpec
from advbench.models.resnet import ResNet18
from advbench.models.smoothing import Smoothing
from advbench.models.sparse_coding import SparseCodingFrontEnd

KAP = "KAP (Bashivan et al.)"
STRIDE = "Larger feature maps (stride/upsampling)"
DISSERTATION = "Structural defenses (dissertation)"
CPNI = "Smoothed inference (CPNI)"
KAP_NOISE = {"noise_sigma": 0.1}
KAP_2D = {"kernel_pool": "avg", "pool_kernel": 3, "pool_dims": 2}
SMOOTH = "Smooth kernels (Wang et al.)"  # its 2 conv + 2 FC net: widths not given; Madry's convs, FC 128 (ours)

# Fashion-MNIST CPU recipes (TrainConfig overrides). Widths are scaled down from the papers'
# (ResNet18 64 -> 16 or 8) so every checkpoint trains in minutes on 2 cores; docs/zoo.md says
# which numbers this makes incomparable with the papers'.
RN16 = {"model_kwargs": {"width": 16}, "epochs": 4}
RN8 = {"model_kwargs": {"width": 8}, "epochs": 1, "max_train": 20000}
# Adversarial recipes: Linf 0.1 (the papers' Fashion-MNIST budget), 4 PGD steps of 0.375 eps,
# on a 10k-image subset for one epoch; the epoch-end weights with the best robust validation
# accuracy are kept (early stopping, Rice et al.).
# Smooth kernels: the paper tunes lambda in {0.01, 0.1, 1, 10, 100} per data set without saying which
# value its Table 1 models use; +-100 is its four-shapes sanity check (§4.1), and ours. lambda = +-100
# makes R(w) dominate the loss; SGD's step on its exp() gradients diverges, Adam's does not.
ADAM = {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0}
# Table 1's models on longer schedules than the zoo's one 10k-image epoch (which left T, A and L
# 12-18 points under the paper's clean accuracy): V, VR and the lambda sweep train normally for 10
# whole-set epochs (~20 s each here), T, TR, A, AR, L and LR adversarially for 3 whole-set epochs.
# The lambda = -100 variants (VH, TH, AH, LH: the four-shapes check's sign) keep the zoo's recipes.
SMOOTH_NORMAL_EPOCHS = 10
# AlexNet has no batch norm and a long FC chain with dropout: SGD at lr 0.1 left it near chance
# (19 % clean after one epoch); Adam without dropout trains it. Two 20k-image epochs left both
# AlexNets under 71 % clean; six epochs over the whole training set reach the other baselines' range.
ALEXNET_CPU = {**RN8, **ADAM, "epochs": 6, "max_train": None, "model_kwargs": {"width": 16, "dropout": 0.0}}
# 3x upsampling costs 9x per image: 10k images; 3x bilinear on one 10k-image epoch stayed at
# 56 % clean, so it gets two whole-set epochs.
UPSAMPLE_CPU: dict[tuple[int, str], dict[str, object]] = {(3, "nearest"): {"max_train": 10000}, (3, "bilinear"): {"epochs": 2, "max_train": None}}
AT_CPU: dict[str, object] = {"epochs": 1, "max_train": 10000, "at_eps": 0.1, "at_steps": 4, "at_rel_stepsize": 0.375}
SMOOTH_AT: dict[str, object] = {**AT_CPU, "epochs": 3, "max_train": None}


def smooth_schedule(recipe: str, lam: float) -> dict[str, object]:
    """A smooth-kernels model's schedule: Table 1's (lambda >= 0) are the longer ones, the four-shapes
    sign (lambda < 0) keeps the zoo's."""
    if recipe == "normal":
        return {"epochs": SMOOTH_NORMAL_EPOCHS if lam >= 0 else 2}
    return SMOOTH_AT if lam >= 0 else AT_CPU


# The dissertation's Table 4.1 models (reproduced in docs/reproductions.md) get the whole training
# set and longer schedules: the small Madry CNN trains ~4x faster per image than the ResNets.
# The plain CNN: the dissertation's stated optimizer (Adam 1e-3, 20 epochs, §4.1.4), no augmentation;
# with two SGD epochs it had kept 5.9 % under PGD 20x100 (paper 0.1 %), trained this way 0.4 %.
MADRY_CNN_ADAM = {"epochs": 20, "max_train": None, **ADAM, "crop_pad": 0, "flip": False}
TABLE41_AT = {"epochs": 8, "max_train": None, "at_eps": 0.1, "at_steps": 7, "at_rel_stepsize": 0.25}

VARIANTS: list[tuple] = [
    # name, architecture, family, paper, description, default kwargs, recipe, CPU training overrides
    ("rn18-nt", ResNet18, "baseline", KAP, "ResNet18, normal training (RN18-NT)", {}, "normal", RN16),
    ("rn18-nt-noise", ResNet18, "noise", KAP, "ResNet18, Gaussian noise on the input and after every conv while training (RN18-NT(sigma))", KAP_NOISE, "normal", RN16),
    ("kap-rn18", ResNet18, "kernel-pooling", KAP, "ResNet18, 2D kernel average pooling (K=3, S=1) after every conv, noise training (RN18-KAP-NT)", {**KAP_2D, **KAP_NOISE}, "normal", RN16),
    ("kap-rn18-nonoise", ResNet18, "kernel-pooling", KAP, "ResNet18 with 2D KAP (K=3), no training noise (Fig. 5a)", KAP_2D, "normal", {**RN16, "epochs": 2}),
    ("kmp-rn18", ResNet18, "kernel-pooling", KAP, "ResNet18, 2D kernel max pooling (K=3) after every conv, noise training (RN18-KMP, Fig. 5b)", {**KAP_2D, "kernel_pool": "max", **KAP_NOISE}, "normal", RN16),
    ("rn18widex4-kap", ResNet18, "kernel-pooling", KAP, "ResNet18 with 4x kernels per conv and 2D KAP (K=3), noise training (RN18WideX4-KAP-NT)", {**KAP_2D, **KAP_NOISE, "width": 256}, "normal",
     {"model_kwargs": {"width": 32}, "epochs": 2}),
    ("rn18-at", ResNet18, "adversarial-training", KAP, "ResNet18, PGD adversarial training with early stopping (Madry et al.; Rice et al.; the KAP paper's AT-ES and the stride paper's AT)", {}, "pgd-at", {**RN8, **AT_CPU}),
    ("rn18-fast-at", ResNet18, "adversarial-training", KAP, "ResNet18, Fast-AT: FGSM with random start (Wong et al.; the KAP paper's baseline for large datasets)", {}, "fast-at", {**RN8, **AT_CPU}),
    *[
        (f"{'kap-' if kap else ''}cnn{d}", ShallowCNN, "kernel-pooling" if kap else "baseline", KAP,
         f"{d}-layer CNN (conv-BN-ReLU){' with 2D KAP (K=3) after each conv' if kap else ''}, noise training (§4.2)",
         {"depth": d, **(KAP_2D if kap else {}), **KAP_NOISE}, "normal", {"epochs": 4})
        for d in (1, 2, 3) for kap in (False, True)
    ],
    # Fig. 4b: non-overlapping KAP (S = K) with 16 K^2 kernels per layer, so every net passes 16
    # kernel ensembles on whatever K (the paper keeps their number fixed; it gives no widths).
    *[
        (f"kap-cnn3-k{k}s{k}", ShallowCNN, "kernel-pooling", KAP,
         f"3-layer CNN with non-overlapping 2D KAP (K=S={k}) after each conv, {16 * k * k} kernels per layer = 16 ensembles of {k * k}, noise training (§4.2, Fig. 4b)",
         {"depth": 3, **KAP_2D, "pool_kernel": k, "pool_stride": k, "channels": 16 * k * k, **KAP_NOISE}, "normal", {"epochs": 4})
        for k in (1, 2, 3, 4)
    ],
    # Fig. 4c: kap-cnn3 (sigma 0.1) trained with other noise levels, input and after every KAP.
    *[
        (f"kap-cnn3-sigma{sigma:g}".replace(".", "p"), ShallowCNN, "kernel-pooling", KAP,
         f"3-layer CNN with 2D KAP (K=3) after each conv, noise training with sigma={sigma} (§4.2, Fig. 4c)",
         {"depth": 3, **KAP_2D, "noise_sigma": sigma}, "normal", {"epochs": 4})
        for sigma in (0.0, 0.05, 0.2)
    ],
    *[
        (f"rn18-s{''.join(map(str, s))}", ResNet18, "stride", STRIDE,
         f"ResNet18 with stage strides {'-'.join(map(str, s))} (§IV-B{'; the usual configuration, baseline of the stride family' if s == (1, 2, 2, 2) else ''})",
         {"strides": list(s)}, "normal", RN8)
        for s in ((1, 2, 2, 2), (1, 1, 2, 2), (2, 2, 2, 2), (1, 1, 1, 2), (1, 2, 1, 2))
    ],
    ("rn18-s1122-maxhead", ResNet18, "stride", STRIDE, "ResNet18 1-1-2-2 with max instead of average pooling before the classifier (§V-C)", {"strides": [1, 1, 2, 2], "head_pool": "max"}, "normal", RN8),
    ("rn18-s1122-at", ResNet18, "stride", STRIDE, "ResNet18 1-1-2-2 with PGD adversarial training (Table V, AT row)", {"strides": [1, 1, 2, 2]}, "pgd-at", {**RN8, **AT_CPU}),
    *[
        (f"rn18-up{f}x-{mode}", ResNet18, "upsampling", STRIDE, f"ResNet18 on inputs upsampled {f}x by {mode} interpolation (§IV-A)", {"upsample": f, "upsample_mode": mode}, "normal",
         {**RN8, **UPSAMPLE_CPU.get((f, mode), {})})
        for f in (2, 3) for mode in ("nearest", "bilinear")
    ],
    *[
        (f"rn18-{recipe}", ResNet18, "adversarial-training", STRIDE, f"ResNet18 trained with {what} (§V-A)", {}, recipe, {**RN8, **AT_CPU})
        for recipe, what in (
            ("trades", "TRADES (Zhang et al., beta=6)"),
            ("alp", "adversarial logit pairing (Kannan et al.)"),
            ("mart", "MART (Wang et al., beta=6)"),
            ("fat", "friendly adversarial training: early-stopped PGD, tau=2 (Zhang et al.)"),
            ("awp", "PGD adversarial training with adversarial weight perturbation (AT-AWP, Wu et al., gamma=5e-3)"),
            ("trades-awp", "TRADES with adversarial weight perturbation (TRADES-AWP)"),
        )
    ],
    ("preact-rn18", PreActResNet18, "baseline", STRIDE, "PreActResNet18, strides 1-2-2-2", {}, "normal", RN8),
    ("preact-rn18-s1122", PreActResNet18, "stride", STRIDE, "PreActResNet18 with stage strides 1-1-2-2 (Table IV)", {"strides": [1, 1, 2, 2]}, "normal", RN8),
    ("vgg16", VGG16, "baseline", STRIDE, "VGG16 (weight-normalized convs), max-pool after every stage (2-2-2-2-2)", {}, "normal", RN8),
    ("vgg16-s11222", VGG16, "stride", STRIDE, "VGG16 without the first two downsamplings (1-1-2-2-2, Table IV)", {"strides": [1, 1, 2, 2, 2]}, "normal", RN8),
    ("alexnet", AlexNet, "baseline", STRIDE, "AlexNet with adaptive average pooling after the conv part, downsamplings 2-2-2-2 (App. B)", {}, "normal", ALEXNET_CPU),
    ("alexnet-s1122", AlexNet, "stride", STRIDE, "AlexNet with downsamplings 1-1-2-2 (Table IV)", {"strides": [1, 1, 2, 2]}, "normal", ALEXNET_CPU),
    ("hah-vgg16", VGG16, "hebbian", DISSERTATION, "VGG16 whose first 6 blocks are HaH blocks (weight-norm conv, ReLU, divisive norm sigma=0.1, keep top 20%), HaH loss K=10%, lambda=0.1 (Ch. 5)",
     {"hah_blocks": 6}, "hah", RN8),
    ("madry-cnn", MadryCNN, "baseline", DISSERTATION, "Madry et al. MNIST CNN (2 conv 32/64 5x5 + max-pool, FC 1024), the polarizer's base (§4.1.4)", {}, "normal", MADRY_CNN_ADAM),
    ("madry-cnn-at", MadryCNN, "adversarial-training", DISSERTATION, "Madry CNN with PGD adversarial training (Table 4.1 'Adv. Training')", {}, "pgd-at", TABLE41_AT),
    ("madry-cnn-fast-at", MadryCNN, "adversarial-training", DISSERTATION, "Madry CNN with RFGSM / Fast-AT (the dissertation's single-step baseline)", {}, "fast-at", AT_CPU),
    ("madry-cnn-trades", MadryCNN, "adversarial-training", DISSERTATION, "Madry CNN with TRADES (lambda=1/6, i.e. beta=6)", {}, "trades", AT_CPU),
    ("pfe-madry", PolarizingFrontEnd, "front-end", DISSERTATION, "Polarizing front end: L1-normalized 5x5 filters, ternary quantizer (c=0.3) with a tanh BPDA surrogate, then the Madry CNN (§4.1)",
     {"threshold": 0.3}, "polarizer", {"epochs": 60, "max_train": None, **ADAM, "normalize": False, "model_kwargs": {"filters": 16}}),
    ("sc-frontend", SparseCodingFrontEnd, "front-end", DISSERTATION, "Sparse-coding front end: 500-atom 4x4 patch dictionary, top-50, dropout 0.95 at test time, dead-zone quantizer (beta=3), decoder, ensemble of 10 (§4.2)",
     {}, "sparse-coding", {"epochs": 1, "max_train": 20000, "normalize": False, "model_kwargs": {"input_size": 28, "atoms": 64, "top_t": 8, "decoder_channels": 16, "classifier_width": 8, "eps": 0.1}}),
    # The non-random encoder is the dissertation's T = 15 model (Table 4.5, chosen from Table B.1);
    # on Fashion-MNIST's 1 x 4 x 4 patches the CPU recipe keeps App. B.3's rule L = 10 x the patch
    # dimension (160 atoms) and T = 15. Attacks route gradients through the top U = 2T = 30.
    ("sc-frontend-nodrop", SparseCodingFrontEnd, "front-end", DISSERTATION, "Sparse-coding front end without dropout (the non-random encoder, §4.2.2.3), T=15, attacked through the top U=2T (Table 4.5)",
     {"dropout": 0.0, "top_t": 15}, "sparse-coding",
     {"epochs": 1, "max_train": 20000, "normalize": False, "model_kwargs": {"input_size": 28, "atoms": 160, "top_t": 15, "decoder_channels": 16, "classifier_width": 8, "eps": 0.1}}),
    *[
        (f"smooth-{loss}{suffix}", MadryCNN, "smooth-kernels", SMOOTH,
         f"2 conv + 2 FC net, {what} loss{' + lambda R(w), lambda=' + str(lam) if lam else ''} (§3-4, {'§4.1 four-shapes check' if lam < 0 else 'Table 1'} '{(loss + suffix).upper()}')", {"hidden": 128}, recipe,
         {"smooth_lambda": lam, **ADAM, **smooth_schedule(recipe, lam)})
        for loss, what, recipe in (("v", "vanilla cross-entropy", "normal"), ("t", "TRADES", "trades"), ("a", "adversarial training", "pgd-at"), ("l", "KL logit pairing", "kl-pairing"))
        for suffix, lam in (("", 0.0), ("r", 100.0), ("h", -100.0))
    ],
    # The paper's lambda grid on VR (the cheapest loss to train): which lambda its Table 1 used is
    # not reported, so the sweep shows what each value does on the bounded and unbounded readings.
    *[
        (f"smooth-vr-lambda{tag}", MadryCNN, "smooth-kernels", SMOOTH,
         f"2 conv + 2 FC net, vanilla cross-entropy loss + lambda R(w), lambda={lam} (§4's lambda grid on Table 1 'VR')", {"hidden": 128}, "normal",
         {"smooth_lambda": lam, **ADAM, "epochs": SMOOTH_NORMAL_EPOCHS})
        for tag, lam in (("0p01", 0.01), ("0p1", 0.1), ("1", 1.0), ("10", 10.0))
    ],
    ("rn20", ResNet20, "baseline", CPNI, "ResNet-20, the CPNI paper's CIFAR-10 base model", {}, "normal", RN8),
    *[
        (name, ResNet20, "noise-injection", CPNI, what, kwargs, "cpni-at", {**RN8, **AT_CPU})
        for name, what, kwargs in (
            ("pni-w", "ResNet-20 with parametric white noise on every conv's weights, adversarially trained (PNI-W, He et al.)", {"noise": "weights"}),
            ("pni-a", "ResNet-20 with parametric white noise on activations, adversarially trained (PNI-A-a)", {"noise": "activations"}),
            ("cpni-w", "ResNet-20 with colored weight noise, covariance D + L^T L, rank 5 (CPNI-W, §4.4)", {"noise": "weights", "colored_rank": 5}),
            ("cpni-a", "ResNet-20 with colored activation noise over channels, rank 5 (CPNI-A)", {"noise": "activations", "colored_rank": 5}),
        )
    ],
]


def smoothed_cpni_w(mode: str = "prediction", sigma: float = 0.25, samples: int = 8, weight_c: float | None = None, **kwargs: Any) -> Smoothing:
    """CPNI-W ResNet-20 under smoothed inference (§3); sigma in the network's (normalized) input units."""
    return Smoothing(ResNet20(noise="weights", colored_rank=5, **kwargs), sigma=sigma, samples=samples, mode=mode, weight_c=weight_c)


# Smoothing changes inference only: these cards reuse cpni-w's trained weights (0 epochs).
SMOOTHED_FROM_CPNI_W = {"init_from": "cpni-w", "epochs": 0, "model_kwargs": {"width": 8}}
VARIANTS += [
    (f"cpni-w-smooth-{mode}", smoothed_cpni_w, "smoothing", CPNI, f"CPNI-W ResNet-20 with {mode} smoothing at inference (M=8, sigma=0.25; §3, eq. {eq})", {"mode": mode}, "cpni-at",
     SMOOTHED_FROM_CPNI_W)
    for mode, eq in (("prediction", 8), ("soft", 9), ("weighted", 11))
] + [
    ("cpni-w-epgd", smoothed_cpni_w, "smoothing", CPNI, "CPNI-W fine-tuned with EPGD adversarial training (gradients averaged over 8 noise draws), prediction smoothing (§4)", {"mode": "prediction"}, "epgd",
     {**SMOOTHED_FROM_CPNI_W, **AT_CPU, "max_train": 5000}),
    ("cpni-w-gauss", smoothed_cpni_w, "smoothing", CPNI, "CPNI-W fine-tuned with 'Gauss' training: Gaussian noise plus, with probability q, a PGD perturbation (eq. 22), prediction smoothing", {"mode": "prediction"}, "gauss",
     {**SMOOTHED_FROM_CPNI_W, **AT_CPU, "max_train": 10000}),
]

for _name, _arch, _family, _paper, _description, _defaults, _recipe, _cpu in VARIANTS:
    MODELS.add(_name, ModelSpec(_name, _arch, _family, _paper, _description, recipe=_recipe, defaults=_defaults, cpu_train=_cpu))
