"""The model table's rows for the KAP paper, the larger-feature-map (stride and upsampling)
paper and the adversarial-training baselines: (name, architecture, family, paper, description,
default kwargs, recipe, CPU training overrides), registered by `table`."""

from __future__ import annotations

from advbench.models.cnn import ShallowCNN
from advbench.models.resnet import ResNet18
from advbench.models.schedules import (
    AT_CPU,
    KAP,
    KAP_2D,
    KAP_NOISE,
    RN8,
    RN16,
    STRIDE,
    UPSAMPLE_CPU,
)

KAP_ROWS: list[tuple] = [
    (
        "rn18-nt",
        ResNet18,
        "baseline",
        KAP,
        "ResNet18, normal training (RN18-NT)",
        {},
        "normal",
        RN16,
    ),
    (
        "rn18-nt-noise",
        ResNet18,
        "noise",
        KAP,
        "ResNet18, Gaussian noise on the input and after every conv while training (RN18-NT(sigma))",
        KAP_NOISE,
        "normal",
        RN16,
    ),
    (
        "kap-rn18",
        ResNet18,
        "kernel-pooling",
        KAP,
        "ResNet18, 2D kernel average pooling (K=3, S=1) after every conv, noise training (RN18-KAP-NT)",
        {**KAP_2D, **KAP_NOISE},
        "normal",
        RN16,
    ),
    (
        "kap-rn18-nonoise",
        ResNet18,
        "kernel-pooling",
        KAP,
        "ResNet18 with 2D KAP (K=3), no training noise (Fig. 5a)",
        KAP_2D,
        "normal",
        {**RN16, "epochs": 2},
    ),
    (
        "kmp-rn18",
        ResNet18,
        "kernel-pooling",
        KAP,
        "ResNet18, 2D kernel max pooling (K=3) after every conv, noise training (RN18-KMP, Fig. 5b)",
        {**KAP_2D, "kernel_pool": "max", **KAP_NOISE},
        "normal",
        RN16,
    ),
    (
        "rn18widex4-kap",
        ResNet18,
        "kernel-pooling",
        KAP,
        "ResNet18 with 4x kernels per conv and 2D KAP (K=3), noise training (RN18WideX4-KAP-NT)",
        {**KAP_2D, **KAP_NOISE, "width": 256},
        "normal",
        {"model_kwargs": {"width": 32}, "epochs": 2},
    ),
    (
        "rn18-at",
        ResNet18,
        "adversarial-training",
        KAP,
        "ResNet18, PGD adversarial training with early stopping (Madry et al.; Rice et al.; the KAP paper's AT-ES and the stride paper's AT)",
        {},
        "pgd-at",
        {**RN8, **AT_CPU},
    ),
    (
        "rn18-fast-at",
        ResNet18,
        "adversarial-training",
        KAP,
        "ResNet18, Fast-AT: FGSM with random start (Wong et al.; the KAP paper's baseline for large datasets)",
        {},
        "fast-at",
        {**RN8, **AT_CPU},
    ),
    *[
        (
            f"{'kap-' if kap else ''}cnn{d}",
            ShallowCNN,
            "kernel-pooling" if kap else "baseline",
            KAP,
            f"{d}-layer CNN (conv-BN-ReLU){' with 2D KAP (K=3) after each conv' if kap else ''}, noise training (§4.2)",
            {"depth": d, **(KAP_2D if kap else {}), **KAP_NOISE},
            "normal",
            {"epochs": 4},
        )
        for d in (1, 2, 3)
        for kap in (False, True)
    ],
    # Fig. 4b: non-overlapping KAP (S = K) with 16 K^2 kernels per layer, so every net passes 16
    # kernel ensembles on whatever K (the paper keeps their number fixed; it gives no widths).
    *[
        (
            f"kap-cnn3-k{k}s{k}",
            ShallowCNN,
            "kernel-pooling",
            KAP,
            f"3-layer CNN with non-overlapping 2D KAP (K=S={k}) after each conv, {16 * k * k} kernels per layer = 16 ensembles of {k * k}, noise training (§4.2, Fig. 4b)",
            {
                "depth": 3,
                **KAP_2D,
                "pool_kernel": k,
                "pool_stride": k,
                "channels": 16 * k * k,
                **KAP_NOISE,
            },
            "normal",
            {"epochs": 4},
        )
        for k in (1, 2, 3, 4)
    ],
    # Fig. 4c: kap-cnn3 (sigma 0.1) trained with other noise levels, input and after every KAP.
    *[
        (
            f"kap-cnn3-sigma{sigma:g}".replace(".", "p"),
            ShallowCNN,
            "kernel-pooling",
            KAP,
            f"3-layer CNN with 2D KAP (K=3) after each conv, noise training with sigma={sigma} (§4.2, Fig. 4c)",
            {"depth": 3, **KAP_2D, "noise_sigma": sigma},
            "normal",
            {"epochs": 4},
        )
        for sigma in (0.0, 0.05, 0.2)
    ],
    *[
        (
            f"rn18-s{''.join(map(str, s))}",
            ResNet18,
            "stride",
            STRIDE,
            f"ResNet18 with stage strides {'-'.join(map(str, s))} (§IV-B{'; the usual configuration, baseline of the stride family' if s == (1, 2, 2, 2) else ''})",
            {"strides": list(s)},
            "normal",
            RN8,
        )
        for s in ((1, 2, 2, 2), (1, 1, 2, 2), (2, 2, 2, 2), (1, 1, 1, 2), (1, 2, 1, 2))
    ],
    (
        "rn18-s1122-maxhead",
        ResNet18,
        "stride",
        STRIDE,
        "ResNet18 1-1-2-2 with max instead of average pooling before the classifier (§V-C)",
        {"strides": [1, 1, 2, 2], "head_pool": "max"},
        "normal",
        RN8,
    ),
    (
        "rn18-s1122-at",
        ResNet18,
        "stride",
        STRIDE,
        "ResNet18 1-1-2-2 with PGD adversarial training (Table V, AT row)",
        {"strides": [1, 1, 2, 2]},
        "pgd-at",
        {**RN8, **AT_CPU},
    ),
    *[
        (
            f"rn18-up{f}x-{mode}",
            ResNet18,
            "upsampling",
            STRIDE,
            f"ResNet18 on inputs upsampled {f}x by {mode} interpolation (§IV-A)",
            {"upsample": f, "upsample_mode": mode},
            "normal",
            {**RN8, **UPSAMPLE_CPU.get((f, mode), {})},
        )
        for f in (2, 3)
        for mode in ("nearest", "bilinear")
    ],
    *[
        (
            f"rn18-{recipe}",
            ResNet18,
            "adversarial-training",
            STRIDE,
            f"ResNet18 trained with {what} (§V-A)",
            {},
            recipe,
            {**RN8, **AT_CPU},
        )
        for recipe, what in (
            ("trades", "TRADES (Zhang et al., beta=6)"),
            ("alp", "adversarial logit pairing (Kannan et al.)"),
            ("mart", "MART (Wang et al., beta=6)"),
            ("fat", "friendly adversarial training: early-stopped PGD, tau=2 (Zhang et al.)"),
            (
                "awp",
                "PGD adversarial training with adversarial weight perturbation (AT-AWP, Wu et al., gamma=5e-3)",
            ),
            ("trades-awp", "TRADES with adversarial weight perturbation (TRADES-AWP)"),
        )
    ],
]
