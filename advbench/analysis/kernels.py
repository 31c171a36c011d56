"""Kernel and weight views (dissertation §3.2; smooth-kernels Fig. 1).

- the first conv layer's kernels as an image grid, and their 2D FFT magnitudes (zero-padded,
  centred: low frequencies in the middle);
- the filter sparsity ratio ((||w||_1 / ||w||_2)^2 - 1) / (d - 1) of every filter of every
  conv layer (d = elements per filter; 0 = one nonzero weight, 1 = all equal), §3.2.2;
- singular values of each conv layer as a linear operator on its input (§3.2.3), normalized by
  the largest. They are computed exactly for the conv with circular boundary (Sedghi et al.,
  2019): per spatial frequency, the singular values of the C_out x C_in(x stride^2, polyphase)
  transfer matrix; with zero padding the true operator differs only at the border.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from advbench.analysis.common import AnalysisResult, image_grid, pyplot, show_image
from advbench.analysis.sparsity import hoyer
from advbench.core.errors import UsageError
from advbench.models.kernel_pooling import KAPConv2d


def effective_weight(conv: nn.Conv2d) -> torch.Tensor:
    """The dense (C_out, C_in, kh, kw) kernel the layer applies: groups expanded, dilation spread, KAP folded."""
    w = conv.weight.detach().float()
    if isinstance(conv, KAPConv2d):
        w = torch.einsum("oc,cikl->oikl", conv.pool.matrix.float(), w)
    if conv.groups > 1:
        cout, cin_g, kh, kw = w.shape
        full = torch.zeros(cout, cin_g * conv.groups, kh, kw, dtype=w.dtype, device=w.device)
        out_g = cout // conv.groups
        for grp in range(conv.groups):  # groups, not samples
            full[grp * out_g : (grp + 1) * out_g, grp * cin_g : (grp + 1) * cin_g] = w[
                grp * out_g : (grp + 1) * out_g
            ]
        w = full
    dh, dw = conv.dilation
    if dh > 1 or dw > 1:
        cout, cin, kh, kw = w.shape
        spread = torch.zeros(
            cout, cin, (kh - 1) * dh + 1, (kw - 1) * dw + 1, dtype=w.dtype, device=w.device
        )
        spread[..., ::dh, ::dw] = w
        w = spread
    return w


def _padding(conv: nn.Conv2d, weight: torch.Tensor) -> tuple[int, int]:
    if isinstance(conv.padding, str):
        return (0, 0) if conv.padding == "valid" else (weight.shape[-2] // 2, weight.shape[-1] // 2)
    return int(conv.padding[0]), int(conv.padding[1])


def conv_singular_values(
    weight: torch.Tensor,
    size: tuple[int, int],
    stride: tuple[int, int] | int = 1,
    padding: tuple[int, int] | int = 0,
) -> torch.Tensor:
    """All singular values, descending, of the conv (cross-correlation) with circular boundary on an H x W input.

    Output pixel u reads input s*u + a - p (mod H) for kernel offset a. Writing a - p = s*q + r
    splits the input into s^2 phases (polyphase), making the strided conv a stride-1 conv
    from C_in*s^2 channels on an (H/s) x (W/s) grid; a 2D DFT then block-diagonalizes it.
    H and W not divisible by the stride are rounded up.
    """
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    cout, cin, kh, kw = weight.shape
    gh, gw = math.ceil(size[0] / sh), math.ceil(size[1] / sw)

    def factors(k: int, s: int, p: int, g: int) -> tuple[torch.Tensor, torch.Tensor]:
        offset = torch.arange(k) - p
        q, r = torch.div(offset, s, rounding_mode="floor"), offset % s
        freq = torch.arange(g).view(-1, 1)
        phase = torch.exp(-2j * math.pi * freq * q.view(1, -1) / g)  # (g, k)
        return phase.to(torch.complex64), F.one_hot(r, s).to(torch.complex64)  # (k, s)

    ea, ra = factors(kh, sh, ph, gh)
    eb, rb = factors(kw, sw, pw, gw)
    w = weight.detach().cpu().to(torch.complex64)
    m = torch.einsum("oiab,ka,lb,ar,bt->kloirt", w, ea, eb, ra, rb).reshape(
        gh * gw, cout, cin * sh * sw
    )
    return torch.linalg.svdvals(m).flatten().sort(descending=True).values


def filter_sparsity(weight: torch.Tensor) -> torch.Tensor:
    """Per-filter ((||w||_1/||w||_2)^2 - 1)/(d - 1) of a (C_out, ...) weight."""
    return hoyer(weight.detach().float().flatten(1), dim=1)


def kernel_spectra(weight: torch.Tensor, fft_size: int = 16) -> torch.Tensor:
    """|FFT2| of each kernel zero-padded to fft_size, centred, averaged over input channels: (C_out, S, S)."""
    spectrum = torch.fft.fft2(weight.detach().float(), s=(fft_size, fft_size)).abs().mean(1)
    return torch.fft.fftshift(spectrum, dim=(-2, -1))


def conv_input_sizes(
    model: nn.Module, input_shape: tuple[int, ...], device: torch.device
) -> dict[str, tuple[int, int]]:
    """Spatial size of the input of every Conv2d, from one forward pass of a blank image."""
    net = getattr(model, "net", model)
    sizes: dict[str, tuple[int, int]] = {}

    def record(name: str, t: torch.Tensor) -> None:
        sizes.setdefault(name, (int(t.shape[-2]), int(t.shape[-1])))

    handles = [
        m.register_forward_pre_hook(lambda mod, args, name=name: record(name, args[0]))
        for name, m in net.named_modules()
        if isinstance(m, nn.Conv2d)
    ]
    try:
        with torch.no_grad():
            model(torch.full((1, *input_shape), 0.5, device=device))
    finally:
        for h in handles:
            h.remove()
    return sizes


def kernels_analysis(
    model: nn.Module,
    input_shape: tuple[int, ...],
    fft_size: int = 16,
    device: torch.device | None = None,
) -> AnalysisResult:
    if fft_size < 1:
        raise UsageError(f"--fft-size must be at least 1, got {fft_size}")
    net = getattr(model, "net", model)
    device = device or next(iter(net.parameters()), torch.zeros(0)).device
    sizes = conv_input_sizes(model, input_shape, device)
    rows, curves, first = [], {}, None
    for name, conv in net.named_modules():
        if not isinstance(conv, nn.Conv2d) or name not in sizes:
            continue
        w = effective_weight(conv)
        first = first if first is not None else (name, w)
        sv = conv_singular_values(
            w, sizes[name], (conv.stride[0], conv.stride[1]), _padding(conv, w)
        )
        normalized = sv / sv[0].clamp_min(1e-12)
        sparsity = filter_sparsity(w)
        curves[name] = normalized
        rows.append(
            [
                name,
                w.shape[1],
                w.shape[0],
                f"{w.shape[2]}x{w.shape[3]}",
                conv.stride[0],
                f"{sizes[name][0]}x{sizes[name][1]}",
                float(sparsity.nanmean()),
                float(sparsity.nanmedian()),
                float(sv[0]),
                float(normalized.pow(2).sum() / len(normalized)),
                float((normalized > 0.1).float().mean()),
            ]
        )
    arrays: dict[str, Any] = {"singular_values": curves}
    summary = {}
    if first is not None:
        arrays["first_kernels"] = first[1].cpu()
        arrays["first_spectra"] = kernel_spectra(first[1], fft_size).cpu()
        summary = {"first_layer": first[0], "first_layer_filter_sparsity": rows[0][6]}
    return AnalysisResult(
        "kernels",
        [
            "layer",
            "in_channels",
            "out_channels",
            "kernel",
            "stride",
            "input_size",
            "filter_sparsity_mean",
            "filter_sparsity_median",
            "top_singular_value",
            "stable_rank_ratio",
            "share_sv_above_0.1",
        ],
        rows,
        summary,
        config={"fft_size": fft_size, "input_shape": list(input_shape)},
        arrays=arrays,
    )


def _normalize_each(t: torch.Tensor) -> torch.Tensor:
    lo = t.flatten(1).amin(1).view(-1, *([1] * (t.dim() - 1)))
    hi = t.flatten(1).amax(1).view(-1, *([1] * (t.dim() - 1)))
    return (t - lo) / (hi - lo).clamp_min(1e-12)


def plot_kernels(result: AnalysisResult, path: Path) -> None:
    plt = pyplot()
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.8), dpi=100)
    kernels = result.arrays.get("first_kernels")
    if kernels is not None:
        shown = kernels if kernels.shape[1] in (1, 3) else kernels.mean(1, keepdim=True)
        nrow = max(1, int(math.sqrt(len(shown))))
        show_image(axes[0], image_grid(_normalize_each(shown), nrow), interpolation="nearest")
        axes[0].set_title(f"{result.summary['first_layer']} kernels")
        spectra = _normalize_each(result.arrays["first_spectra"]).unsqueeze(1)
        show_image(axes[1], image_grid(spectra, nrow), interpolation="nearest")
        axes[1].set_title("|FFT| (low frequencies centred)")
    names = result.column("layer")
    axes[2].bar(range(len(names)), result.column("filter_sparsity_mean"))
    axes[2].set_xticks(range(len(names)))
    axes[2].set_xticklabels(names, rotation=90, fontsize=6)
    axes[2].set_ylim(0, 1)
    axes[2].set_title("filter sparsity ratio (mean)")
    cmap = plt.get_cmap("viridis")
    curves = result.arrays.get("singular_values", {})
    for i, (name, sv) in enumerate(curves.items()):
        axes[3].plot(
            torch.linspace(0, 1, len(sv)).numpy(),
            sv.numpy(),
            color=cmap(i / max(1, len(curves) - 1)),
            lw=1,
            label=name if i in (0, len(curves) - 1) else None,
        )
    axes[3].set_xlabel("rank / number of singular values")
    axes[3].set_ylabel("singular value / largest")
    axes[3].set_title("conv layers as linear operators")
    axes[3].legend(fontsize=7)
    axes[3].grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
