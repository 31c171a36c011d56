"""Registered models. Names follow the papers (see docs/zoo.md)."""

from __future__ import annotations

from typing import Any

from torch import nn

from advbench.models.registry import register_model
from advbench.models.resnet import ResNet18

KAP_PAPER = "KAP (Bashivan et al.)"


@register_model(
    "rn18-nt", family="baseline", paper=KAP_PAPER, description="ResNet18, normal training (RN18-NT)"
)
def rn18_nt(**kwargs: Any) -> nn.Module:
    return ResNet18(**kwargs)


@register_model(
    "rn18-nt-noise",
    family="noise",
    paper=KAP_PAPER,
    description="ResNet18, Gaussian noise on the input and after every conv while training (RN18-NT(sigma))",
    noise_sigma=0.1,
)
def rn18_nt_noise(**kwargs: Any) -> nn.Module:
    return ResNet18(**kwargs)


@register_model(
    "kap-rn18",
    family="kernel-pooling",
    paper=KAP_PAPER,
    description="ResNet18, 2D kernel average pooling (K=3, S=1) after every conv, noise training (RN18-KAP-NT)",
    kernel_pool="avg",
    pool_kernel=3,
    pool_dims=2,
    noise_sigma=0.1,
)
def kap_rn18(**kwargs: Any) -> nn.Module:
    return ResNet18(**kwargs)
