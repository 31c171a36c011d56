"""fp16 and bf16 modules handed to `advbench.evaluate` and `advbench.certify` (issue 39, item 7):
inputs are cast to the module's dtype and its logits back to float32, and a bf16 state dict is
hashed (numpy has no bfloat16). Before: a dtype mismatch in the first forward pass, and bf16
failed at `.numpy()`."""

from __future__ import annotations

import hashlib

import pytest
import torch
from torch import nn

import advbench
from advbench.engine.from_objects import CastInputs, weights_sha256


def net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def data() -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(12, 1, 8, 8, generator=gen)
    with torch.no_grad():
        y = net()(x).argmax(1)  # labels the float32 net gets right, so the attacks have work
    return x, y


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_a_low_precision_module_is_evaluated_in_its_dtype(dtype: torch.dtype) -> None:
    x, y = data()
    low = advbench.evaluate(net().to(dtype), x, y, "linf:0.1", ["fgsm", "pgd:steps=3"], checks=False, device="cpu")
    full = advbench.evaluate(net(), x, y, "linf:0.1", ["fgsm", "pgd:steps=3"], checks=False, device="cpu")
    assert full.clean_accuracy == 1.0 and low.clean_accuracy >= 10 / 12  # rounding may flip a near tie
    assert abs(low.robust_accuracy[0.1] - full.robust_accuracy[0.1]) <= 3 / 12
    assert low.summary.run_id != full.summary.run_id


def test_a_bf16_module_certifies_and_hashes() -> None:
    x, y = data()
    cert = advbench.certify(net().to(torch.bfloat16), x[:4], y[:4], sigma=0.25, n0=10, noise_draws=100, device="cpu")
    assert len(cert.radius) == 4 and cert.summary.n == 4
    low = CastInputs(net().to(torch.bfloat16), torch.bfloat16)
    assert weights_sha256(low) != weights_sha256(CastInputs(net().to(torch.float16), torch.float16))


def test_the_hash_of_float32_weights_is_unchanged() -> None:
    """Stored runs of objects hash their float32 state dicts as before (numpy's bytes)."""
    model = net()
    digest = hashlib.sha256()
    for key, tensor in sorted(model.state_dict().items()):
        digest.update(key.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    assert weights_sha256(model) == digest.hexdigest()
