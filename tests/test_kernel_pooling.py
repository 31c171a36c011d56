import pytest
import torch

from advbench.models.kernel_pooling import KAPConv2d, KernelPool, channel_sheet


def explicit_pool_1d(x: torch.Tensor, k: int, mode: str) -> torch.Tensor:
    """Reference: for each channel, the mean/max over the neighbours that exist."""
    c, r = x.shape[1], k // 2
    out = []
    for i in range(c):
        neigh = x[:, max(0, i - r) : min(c, i + r + 1)]
        out.append(neigh.mean(1) if mode == "avg" else neigh.amax(1))
    return torch.stack(out, 1)


def explicit_pool_2d(x: torch.Tensor, k: int, mode: str) -> torch.Tensor:
    n, c, h, w = x.shape
    rows, cols = channel_sheet(c)
    sheet = x.view(n, rows, cols, h, w)
    r = k // 2
    out = torch.empty_like(x)
    for i in range(rows):
        for j in range(cols):
            neigh = sheet[:, max(0, i - r) : i + r + 1, max(0, j - r) : j + r + 1].flatten(1, 2)
            out[:, i * cols + j] = neigh.mean(1) if mode == "avg" else neigh.amax(1)
    return out


@pytest.mark.parametrize("channels", [8, 16, 12, 7])
@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("mode", ["avg", "max"])
def test_kap_1d_matches_explicit_mean(channels: int, k: int, mode: str) -> None:
    x = torch.randn(2, channels, 3, 4)
    torch.testing.assert_close(KernelPool(channels, k, 1, mode, dims=1)(x), explicit_pool_1d(x, k, mode))


@pytest.mark.parametrize("channels", [16, 8, 32, 12, 7])
@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("mode", ["avg", "max"])
def test_kap_2d_matches_explicit_mean_on_sheet(channels: int, k: int, mode: str) -> None:
    x = torch.randn(2, channels, 3, 4)
    torch.testing.assert_close(KernelPool(channels, k, 1, mode, dims=2)(x), explicit_pool_2d(x, k, mode))


def test_border_channel_averages_only_existing_neighbours() -> None:
    # Zero-weight padding: channel 0 of a 1D KAP (K=3) is the mean of channels 0 and 1, not /3.
    x = torch.zeros(1, 4, 1, 1)
    x[0, :, 0, 0] = torch.tensor([3.0, 6.0, 0.0, 0.0])
    out = KernelPool(4, 3, 1, "avg", dims=1)(x)
    assert out[0, 0, 0, 0].item() == pytest.approx(4.5)
    assert out[0, 1, 0, 0].item() == pytest.approx(3.0)


def test_stride_reduces_kernels() -> None:
    pool = KernelPool(16, 3, 2, "avg", dims=2)
    out = pool(torch.randn(1, 16, 2, 2))
    assert out.shape[1] == pool.out_channels == 4


def test_sheet_is_most_square() -> None:
    assert channel_sheet(64) == (8, 8)
    assert channel_sheet(128) == (8, 16)
    assert channel_sheet(7) == (1, 7)


def test_kap_folds_into_conv_weights() -> None:
    torch.manual_seed(0)
    pool = KernelPool(16, 3, 1, "avg", dims=2)
    fused = KAPConv2d(3, 16, 3, 1, pool)
    x = torch.randn(2, 3, 8, 8)
    plain = torch.nn.functional.conv2d(x, fused.weight, padding=1)
    torch.testing.assert_close(fused(x), pool(plain), rtol=1e-5, atol=1e-5)
    # Gradients reach the raw weights through the averaging.
    fused(x).sum().backward()
    assert fused.weight.grad is not None and fused.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("k", [1, 2, 3, 4])
@pytest.mark.parametrize("mode", ["avg", "max"])
def test_non_overlapping_pool_tiles_the_sheet(k: int, mode: str) -> None:
    # KAP paper Fig. 4b: S = K; each output is the mean/max of one K x K block of the 4K x 4K
    # sheet, every kernel in exactly one block (no padding, none dropped at the border).
    channels = 16 * k * k
    x = torch.randn(2, channels, 3, 3)
    pool = KernelPool(channels, k, k, mode, dims=2)
    blocks = x.view(2, 4, k, 4, k, 3, 3).permute(0, 1, 3, 2, 4, 5, 6).flatten(3, 4)
    expected = (blocks.mean(3) if mode == "avg" else blocks.amax(3)).flatten(1, 2)
    assert pool.out_channels == 16
    torch.testing.assert_close(pool(x), expected)


def test_non_overlapping_pool_rejects_a_sheet_it_cannot_tile() -> None:
    with pytest.raises(ValueError, match="divisible by K"):
        KernelPool(36, 4, 4, "avg", dims=2)  # 6 x 6 sheet
    with pytest.raises(ValueError, match="odd kernel size"):
        KernelPool(64, 2, 1, "avg", dims=2)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_shallow_cnn_with_non_overlapping_kap_keeps_16_ensembles(k: int) -> None:
    from advbench.models.cnn import ShallowCNN

    net = ShallowCNN(3, 10, 1, 16 * k * k, "avg", k, 2, 0.0, pool_stride=k).eval()
    units = [m for m in net.body if hasattr(m, "out_channels")]
    assert [u.conv.out_channels for u in units] == [16 * k * k] * 3  # kernels per layer grow as K^2
    assert [u.out_channels for u in units] == [16] * 3  # ensembles passed on stay 16
    assert net(torch.rand(2, 1, 28, 28)).shape == (2, 10)
