"""Parametric noise injection (PNI, He et al. 2019) and its colored variant CPNI
(smoothed-inference paper §4.4): noise with a learned scale, on weights or activations, at
training and at inference, so the model is `stochastic`.

White noise: w + alpha * std(w) * N(0, I). Colored noise: the N(0, I) draw is replaced by a
draw with covariance Sigma = D + L^T L (D diagonal, L of rank r), learned with the model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from advbench.models.randomness import DrawScope


class ColoredNoise(nn.Module):
    """Gaussian vectors of length n with covariance D + L^T L (L: r x n)."""

    def __init__(self, n: int, rank: int = 5, init_scale: float = 0.1) -> None:
        super().__init__()
        self.n, self.rank = n, rank
        self.log_d = nn.Parameter(torch.zeros(n))  # D = diag(exp(log_d)), positive by construction
        self.low_rank = nn.Parameter(init_scale * torch.randn(rank, n) / rank**0.5)

    def covariance(self) -> torch.Tensor:
        return torch.diag(self.log_d.exp()) + self.low_rank.t() @ self.low_rank

    def sample(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """`count` draws, shape (count, n): sqrt(D) z1 + L^T z2 has covariance D + L^T L."""
        dev = self.log_d.device
        z1 = torch.randn(count, self.n, generator=generator, device=dev)
        z2 = torch.randn(count, self.rank, generator=generator, device=dev)
        return self.color(z1, z2)

    def color(self, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
        """sqrt(D) z1 + L^T z2 for white draws z1 (..., n) and z2 (..., rank)."""
        return z1 * (0.5 * self.log_d).exp() + z2 @ self.low_rank

    def sample_rows(
        self, draws: DrawScope, layer: nn.Module, rows: int, count: int
    ) -> torch.Tensor:
        """`count` draws per input row, shape (rows, count, n), from the wrapper's per-row keys."""
        z = draws.normal(layer, rows, (count, self.n + self.rank)).to(self.log_d)
        return self.color(z[..., : self.n], z[..., self.n :])


class NoisyConv2d(nn.Conv2d):
    """Conv whose weights get fresh noise every forward pass: alpha * std(w) * (white or colored) noise.

    Training (and the bare network) draws one noisy weight per pass from torch's RNG. Under the
    wrapper at inference, each input row gets its own noisy weights drawn from its key
    (`models.randomness`), applied as one grouped convolution, so a sample's output does not
    depend on its batch-mates.
    """

    draws: DrawScope | None = None  # set by the wrapper during a forward pass

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        stride: int = 1,
        colored_rank: int | None = None,
        alpha: float = 0.25,
    ) -> None:
        super().__init__(cin, cout, kernel, stride, kernel // 2, bias=False)
        self.alpha = nn.Parameter(torch.tensor(alpha))
        self.colored = ColoredNoise(cin * kernel * kernel, colored_rank) if colored_rank else None

    is_stochastic = True

    @property
    def fixed_normal_shape(self) -> tuple[int, ...]:
        """The per-row shape of this layer's normal draw at inference, the same at every pass
        (`models.randomness.DrawScope` makes such draws together)."""
        if self.colored is not None:
            return (self.out_channels, self.colored.n + self.colored.rank)
        return tuple(self.weight.shape)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.alpha * self.weight.detach().std()
        if self.training or self.draws is None:
            if self.colored is not None:
                noise = self.colored.sample(self.out_channels).view_as(self.weight)
            else:
                noise = torch.randn_like(self.weight)
            return self._conv_forward(x, self.weight + scale * noise, None)
        n = len(x)
        if self.colored is not None:
            noise = self.colored.sample_rows(self.draws, self, n, self.out_channels)
        else:
            noise = self.draws.normal(self, n, tuple(self.weight.shape))
        noise = noise.view(n, *self.weight.shape).to(self.weight.dtype)
        if torch.is_grad_enabled():
            weights = self.weight + scale * noise  # (N, out, in, k, k)
        else:  # the same sums in the draw's memory (never while autograd may save its buffer)
            weights = noise.mul_(scale).add_(self.weight)
        out = F.conv2d(
            x.reshape(1, -1, *x.shape[2:]),
            weights.reshape(-1, *self.weight.shape[1:]),
            None,
            self.stride,
            self.padding,
            self.dilation,
            self.groups * n,
        )
        return out.view(n, self.out_channels, *out.shape[2:])


class NoisyActivation(nn.Module):
    """x + alpha * std(x) * noise per sample (PNI-A-a); colored noise over the channels when rank is set.

    std(x) is the batch's while training and each sample's own at inference, so that a sample's
    output does not depend on its batch-mates; under the wrapper at inference the noise is drawn
    from each row's key (`models.randomness`).
    """

    draws: DrawScope | None = None  # set by the wrapper during a forward pass

    def __init__(self, channels: int, colored_rank: int | None = None, alpha: float = 0.25) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.tensor(alpha))
        self.colored = ColoredNoise(channels, colored_rank) if colored_rank else None

    is_stochastic = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        if self.training:
            std = x.detach().std()
        else:
            std = x.detach().flatten(1).std(dim=1).view(n, 1, 1, 1)
        if self.training or self.draws is None:
            if self.colored is not None:
                noise = self.colored.sample(n * h * w).view(n, h, w, c).permute(0, 3, 1, 2)
            else:
                noise = torch.randn_like(x)
        elif self.colored is not None:
            noise = (
                self.colored.sample_rows(self.draws, self, n, h * w)
                .view(n, h, w, c)
                .permute(0, 3, 1, 2)
            )
        else:
            noise = self.draws.normal(self, n, (c, h, w))
        return x + self.alpha * std * noise.to(x.dtype)


class ResNet20(nn.Module):
    """CIFAR ResNet-20 (3 stages of 3 basic blocks, 16-32-64 channels), the CPNI base model.

    `noise`: None, "weights" (PNI-W / CPNI-W) or "activations" (PNI-A / CPNI-A);
    `colored_rank`: None for white noise, r for colored noise with covariance D + L^T L.
    """

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        width: int = 16,
        noise: str | None = None,
        colored_rank: int | None = None,
    ) -> None:
        super().__init__()
        if noise not in (None, "weights", "activations"):
            raise ValueError("noise is None, 'weights' or 'activations'")

        def conv(cin: int, cout: int, kernel: int, stride: int) -> nn.Module:
            if noise == "weights":
                return NoisyConv2d(cin, cout, kernel, stride, colored_rank)
            layers: list[nn.Module] = [
                nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False)
            ]
            if noise == "activations":
                layers.append(NoisyActivation(cout, colored_rank))
            return nn.Sequential(*layers)

        self.stem = nn.Sequential(conv(in_channels, width, 3, 1), nn.BatchNorm2d(width), nn.ReLU())
        blocks, cin = [], width
        for stage in range(3):
            cout = width * 2**stage
            for i in range(3):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(_Block(conv, cin, cout, stride))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.blocks(self.stem(x)).mean(dim=(2, 3)))


class _Block(nn.Module):
    def __init__(self, conv, cin: int, cout: int, stride: int) -> None:  # noqa: ANN001
        super().__init__()
        self.body = nn.Sequential(
            conv(cin, cout, 3, stride),
            nn.BatchNorm2d(cout),
            nn.ReLU(),
            conv(cout, cout, 3, 1),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = (
            nn.Sequential(conv(cin, cout, 1, stride), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))
