"""Common corruptions in the style of CIFAR-10-C (Hendrycks & Dietterich), generated locally
in torch, batched, at 5 severities (dissertation Table 5.2).

Parameters follow CIFAR-10-C where the operation is the same (noise levels, blur sizes,
contrast, brightness, pixelation, JPEG quality). Where CIFAR-10-C relies on ImageMagick or
stored photographs (snow, frost, motion blur), a torch approximation stands in; shot noise
uses the normal approximation of the Poisson draw and JPEG is the 8x8 DCT quantization with
the standard tables (no chroma subsampling, no entropy coding, which is lossless anyway).

Randomness depends only on (seed, corruption name): every severity sees the same base noise,
so a higher severity moves the image further from the clean one. Spatial sizes are given for
32x32 images and grow with larger images. Inputs and outputs are (N, C, H, W) in [0,1].

The accuracy analysis over these corruptions is in `corruptions`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from advbench.core.errors import UsageError
from advbench.core.seeding import derive_seed

SEVERITIES = (1, 2, 3, 4, 5)


# ----------------------------------------------------------------------------- helpers


def _gen(x: torch.Tensor, seed: int, name: str) -> torch.Generator:
    return torch.Generator(device=x.device).manual_seed(derive_seed(seed, "corruption", name))


def _randn(x: torch.Tensor, g: torch.Generator, shape: Sequence[int] | None = None) -> torch.Tensor:
    return torch.randn(tuple(shape or x.shape), generator=g, device=x.device, dtype=x.dtype)


def _rand(x: torch.Tensor, g: torch.Generator, shape: Sequence[int] | None = None) -> torch.Tensor:
    return torch.rand(tuple(shape or x.shape), generator=g, device=x.device, dtype=x.dtype)


def _scale(x: torch.Tensor) -> float:
    """Spatial parameters are for 32x32; larger images scale them up (smaller ones keep them)."""
    return max(1.0, min(x.shape[-2:]) / 32)


def _depthwise(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Filter every channel with one 2D kernel (kh, kw), or each sample with its own (N, kh, kw)."""
    n, c, h, w = x.shape
    kh, kw = kernel.shape[-2:]
    padded = F.pad(x, (kw // 2, kw // 2, kh // 2, kh // 2), mode="replicate")
    if kernel.dim() == 2:
        return F.conv2d(padded, kernel.to(x).expand(c, 1, kh, kw), groups=c)
    weight = kernel.to(x).repeat_interleave(c, dim=0).unsqueeze(1)
    return F.conv2d(padded.reshape(1, n * c, *padded.shape[-2:]), weight, groups=n * c).view(
        n, c, h, w
    )


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k1 = torch.exp(-(t**2) / (2 * sigma**2))
    k2 = torch.outer(k1, k1)
    return k2 / k2.sum()


def gaussian_filter(x: torch.Tensor, sigma: float) -> torch.Tensor:
    return x if sigma <= 0 else _depthwise(x, _gaussian_kernel(sigma))


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 3:
        return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]
    return x.mean(1, keepdim=True)


def _fractal(x: torch.Tensor, g: torch.Generator, decay: float) -> torch.Tensor:
    """(N, 1, H, W) plasma-like fractal noise in [0,1]: octaves of upsampled uniform noise, amplitude decay^-k."""
    n, _, h, w = x.shape
    size = max(h, w)
    out = torch.zeros(n, 1, h, w, device=x.device, dtype=x.dtype)
    octaves = max(1, math.ceil(math.log2(size)))
    for k in range(1, octaves + 1):
        cells = min(size, 2**k)
        coarse = _rand(x, g, (n, 1, cells, cells)) - 0.5
        out += F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False) * decay ** (
            -k
        )
    lo = out.flatten(1).amin(1).view(-1, 1, 1, 1)
    hi = out.flatten(1).amax(1).view(-1, 1, 1, 1)
    return (out - lo) / (hi - lo).clamp_min(1e-8)


def _motion_kernels(
    x: torch.Tensor, g: torch.Generator, sigma: float, angles: torch.Tensor | None = None
) -> torch.Tensor:
    """(N, K, K) one-sided line kernels with Gaussian weights along a random angle in [-45, 45] degrees."""
    n = x.shape[0]
    radius = max(1, math.ceil(3 * sigma))
    size = 2 * radius + 1
    if angles is None:
        angles = (_rand(x, g, (n,)) * 90 - 45) * math.pi / 180
    t = torch.linspace(0, radius, 4 * radius + 1, device=x.device, dtype=x.dtype)
    weights = torch.exp(-(t**2) / (2 * sigma**2)).expand(n, -1)
    px = radius + t.view(1, -1) * torch.cos(angles).view(-1, 1)
    py = radius - t.view(1, -1) * torch.sin(angles).view(-1, 1)
    kernel = torch.zeros(n, size * size, device=x.device, dtype=x.dtype)
    x0, y0 = px.floor(), py.floor()
    for dx in (0, 1):  # bilinear splatting onto the 4 neighbouring kernel cells
        for dy in (0, 1):
            cx, cy = x0 + dx, y0 + dy
            share = (1 - (px - cx).abs()) * (1 - (py - cy).abs()) * weights
            inside = (cx >= 0) & (cx < size) & (cy >= 0) & (cy < size)
            index = (cy.clamp(0, size - 1) * size + cx.clamp(0, size - 1)).long()
            kernel.scatter_add_(1, index, torch.where(inside, share, torch.zeros_like(share)))
    kernel = kernel / kernel.sum(1, keepdim=True)
    return kernel.view(n, size, size)


def _zoom(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Zoom into the centre by `factor`, keeping the size (bilinear)."""
    theta = torch.tensor(
        [[1 / factor, 0, 0], [0, 1 / factor, 0]], device=x.device, dtype=x.dtype
    ).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


# ----------------------------------------------------------------------------- corruptions
# Each takes (x, severity 1..5, generator) and returns an image batch in [0,1].


def gaussian_noise(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    c = (0.04, 0.06, 0.08, 0.09, 0.10)[s - 1]
    return x + c * _randn(x, g)


def shot_noise(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    c = (500, 250, 100, 75, 50)[
        s - 1
    ]  # photons per unit intensity; Poisson(c x)/c ~ x + sqrt(x/c) z
    return x + torch.sqrt(x.clamp_min(0) / c) * _randn(x, g)


def impulse_noise(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    amount = (0.01, 0.02, 0.03, 0.05, 0.07)[s - 1]  # share of salt-and-pepper elements
    u = _rand(x, g)
    return torch.where(
        u < amount / 2, torch.ones_like(x), torch.where(u > 1 - amount / 2, torch.zeros_like(x), x)
    )


def speckle_noise(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    c = (0.06, 0.10, 0.12, 0.16, 0.20)[s - 1]
    return x + x * c * _randn(x, g)


def gaussian_blur(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    return gaussian_filter(x, (0.4, 0.6, 0.7, 0.8, 1.0)[s - 1] * _scale(x))


def defocus_blur(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    radius = (0.6, 0.8, 1.0, 1.5, 2.0)[s - 1] * _scale(x)
    reach = math.ceil(radius)
    t = torch.arange(-reach, reach + 1, dtype=torch.float32)
    dist = torch.sqrt(t.view(-1, 1) ** 2 + t.view(1, -1) ** 2)
    disk = (radius + 0.5 - dist).clamp(0, 1)  # anti-aliased disk
    return _depthwise(x, disk / disk.sum())


def motion_blur(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    sigma = (1.0, 1.5, 2.0, 2.5, 3.0)[s - 1] * _scale(x)
    return _depthwise(x, _motion_kernels(x, g, sigma))


def zoom_blur(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    top = (1.06, 1.11, 1.16, 1.21, 1.26)[s - 1]
    factors = torch.arange(1.0, top, 0.01).tolist()[1:]
    out = x.clone()
    for f in factors:  # zoom factors, not samples
        out += _zoom(x, f)
    return out / (len(factors) + 1)


def snow(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    """Falling snow: sparse bright flakes streaked by motion blur, over a whitened image."""
    threshold, sigma, blend = (
        (2.0, 1.0, 0.95),
        (1.7, 1.5, 0.9),
        (1.4, 2.0, 0.85),
        (1.1, 2.5, 0.8),
        (0.8, 3.0, 0.75),
    )[s - 1]
    n, _, h, w = x.shape
    z = _randn(x, g, (n, 1, h, w))
    angles = (_rand(x, g, (n,)) * 90 - 45) * math.pi / 180
    flakes = torch.where(z > threshold, 0.5 + 0.25 * z, torch.zeros_like(z))
    flakes = _depthwise(flakes, _motion_kernels(x, g, sigma * _scale(x), angles)) * 2.0
    base = blend * x + (1 - blend) * torch.maximum(x, _gray(x) * 1.5 + 0.5)
    return base + flakes + flakes.flip(-1, -2)


def fog(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    c = (1.5, 2.0, 2.5, 2.75, 3.0)[s - 1]
    peak = x.flatten(1).amax(1).view(-1, 1, 1, 1)
    return (x + c * _fractal(x, g, 1.7)) * peak / (peak + c)


def frost(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    """A generated ice texture (sharp high-frequency fractal) blended in, with CIFAR-10-C's weights."""
    keep, add = ((1.0, 0.4), (0.8, 0.6), (0.7, 0.7), (0.65, 0.7), (0.6, 0.75))[s - 1]
    ice = _fractal(x, g, 1.15).pow(3)
    if x.shape[1] == 3:
        ice = ice * torch.tensor([0.85, 0.92, 1.0], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return keep * x + add * ice


def brightness(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    c = (0.1, 0.2, 0.3, 0.4, 0.5)[s - 1]  # added to V in HSV; hue and saturation kept
    v = x.amax(1, keepdim=True)
    v_new = (v + c).clamp(0, 1)
    scaled = x * v_new / v.clamp_min(1e-8)
    return torch.where(v > 0, scaled, v_new.expand_as(x))


def contrast(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    c = (0.75, 0.5, 0.4, 0.3, 0.15)[s - 1]
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean) * c + mean


def elastic(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    """A smooth random displacement field of largest displacement alpha pixels."""
    alpha = (0.5, 1.0, 1.5, 2.0, 2.5)[s - 1] * _scale(x)
    n, _, h, w = x.shape
    field = gaussian_filter(_rand(x, g, (n, 2, h, w)) * 2 - 1, 2.0 * _scale(x))
    field = field / field.abs().flatten(1).amax(1).clamp_min(1e-8).view(-1, 1, 1, 1)
    theta = torch.eye(2, 3, device=x.device, dtype=x.dtype).expand(n, 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    offset = (
        field.permute(0, 2, 3, 1)
        * alpha
        * torch.tensor([2 / w, 2 / h], device=x.device, dtype=x.dtype)
    )
    return F.grid_sample(
        x, grid + offset, mode="bilinear", padding_mode="reflection", align_corners=False
    )


def _blocks(x: torch.Tensor, k: int) -> torch.Tensor:
    """Each k x k block replaced by its mean (partial blocks at the border average what they hold)."""
    if k <= 1:
        return x
    h, w = x.shape[-2:]
    small = F.avg_pool2d(x, k, k, ceil_mode=True)
    return small.repeat_interleave(k, -2).repeat_interleave(k, -1)[..., :h, :w]


def pixelate(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    """Block averaging with block sizes 1.25-3 px (CIFAR-10-C resizes to 95-65 %, which aliases on
    small images and is not monotone); a size between 1 and 2 blends the image with its 2 px blocks."""
    size = (1.25, 1.5, 1.75, 2.0, 3.0)[s - 1] * _scale(x)
    k = math.floor(size)
    t = size - k
    return _blocks(x, k) if t == 0 else (1 - t) * _blocks(x, k) + t * _blocks(x, k + 1)


_LUMA = torch.tensor(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=torch.float32,
)
_CHROMA = torch.full((8, 8), 99.0)
_CHROMA[:4, :4] = torch.tensor(
    [[17, 18, 24, 47], [18, 21, 26, 66], [24, 26, 56, 99], [47, 66, 99, 99]], dtype=torch.float32
)


def _dct_matrix() -> torch.Tensor:
    k = torch.arange(8, dtype=torch.float32)
    m = torch.cos((2 * k.view(1, -1) + 1) * k.view(-1, 1) * math.pi / 16) * math.sqrt(2 / 8)
    m[0] /= math.sqrt(2)
    return m


def jpeg_roundtrip(x: torch.Tensor, quality: int) -> torch.Tensor:
    """Baseline JPEG's lossy part: YCbCr, 8x8 block DCT, quantization with the quality-scaled IJG tables."""
    n, c, h, w = x.shape
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    tables = [((t * scale + 50) // 100).clamp(1, 255) for t in (_LUMA, _CHROMA)]
    if c == 3:
        r, gch, b = x[:, 0], x[:, 1], x[:, 2]
        ycc = torch.stack(
            [
                0.299 * r + 0.587 * gch + 0.114 * b,
                -0.168736 * r - 0.331264 * gch + 0.5 * b + 0.5,
                0.5 * r - 0.418688 * gch - 0.081312 * b + 0.5,
            ],
            1,
        )
        q = torch.stack([tables[0], tables[1], tables[1]]).to(x)
    else:
        ycc, q = x, tables[0].to(x).expand(c, 8, 8)
    ph, pw = (-h) % 8, (-w) % 8
    padded = F.pad(ycc * 255 - 128, (0, pw, 0, ph), mode="replicate")
    hb, wb = padded.shape[-2] // 8, padded.shape[-1] // 8
    blocks = padded.view(n, c, hb, 8, wb, 8).permute(0, 1, 2, 4, 3, 5)  # n c hb wb 8 8
    d = _dct_matrix().to(x)
    coeff = d @ blocks @ d.T
    qv = q.view(1, c, 1, 1, 8, 8)
    restored = d.T @ (torch.round(coeff / qv) * qv) @ d
    out = (
        restored.permute(0, 1, 2, 4, 3, 5).reshape(n, c, hb * 8, wb * 8)[..., :h, :w] + 128
    ) / 255
    if c == 3:
        yy, cb, cr = out[:, 0], out[:, 1] - 0.5, out[:, 2] - 0.5
        out = torch.stack([yy + 1.402 * cr, yy - 0.344136 * cb - 0.714136 * cr, yy + 1.772 * cb], 1)
    return out


def jpeg(x: torch.Tensor, s: int, g: torch.Generator) -> torch.Tensor:
    return jpeg_roundtrip(x, (80, 65, 58, 50, 40)[s - 1])


CorruptionFn = Callable[[torch.Tensor, int, torch.Generator], torch.Tensor]

CORRUPTIONS: dict[str, tuple[str, CorruptionFn]] = {
    "gaussian_noise": ("noise", gaussian_noise),
    "shot_noise": ("noise", shot_noise),
    "impulse_noise": ("noise", impulse_noise),
    "speckle_noise": ("noise", speckle_noise),
    "gaussian_blur": ("blur", gaussian_blur),
    "defocus_blur": ("blur", defocus_blur),
    "motion_blur": ("blur", motion_blur),
    "zoom_blur": ("blur", zoom_blur),
    "snow": ("weather", snow),
    "fog": ("weather", fog),
    "frost": ("weather", frost),
    "brightness": ("digital", brightness),
    "contrast": ("digital", contrast),
    "elastic": ("digital", elastic),
    "pixelate": ("digital", pixelate),
    "jpeg": ("digital", jpeg),
}


def corruption_names(spec: str | Sequence[str] | None = None) -> list[str]:
    """All names, or those listed (comma-separated or a list; a category name selects its corruptions)."""
    if spec is None or spec == "all":
        return list(CORRUPTIONS)
    wanted = [w.strip() for w in (spec.split(",") if isinstance(spec, str) else spec) if w.strip()]
    names: list[str] = []
    for w in wanted:
        found = [n for n, (cat, _) in CORRUPTIONS.items() if w in (n, cat)]
        if not found:
            raise UsageError(
                f"unknown corruption {w!r}; known: {', '.join(CORRUPTIONS)} (or noise, blur, weather, digital)"
            )
        names += [n for n in found if n not in names]
    return names


def corrupt(x: torch.Tensor, name: str, severity: int, seed: int = 0) -> torch.Tensor:
    """x corrupted by `name` at `severity` (1-5), clipped to [0,1]; same seed, same base noise at every severity."""
    if name not in CORRUPTIONS:
        raise UsageError(f"unknown corruption {name!r}; known: {', '.join(CORRUPTIONS)}")
    if severity not in SEVERITIES:
        raise UsageError(f"severity is 1 to 5, got {severity}")
    if x.dim() != 4:
        raise UsageError(f"corruptions take N x C x H x W images, got shape {tuple(x.shape)}")
    return CORRUPTIONS[name][1](x, severity, _gen(x, seed, name)).clamp(0, 1)
