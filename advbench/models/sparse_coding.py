"""Sparse-coding front end (dissertation §4.2, App. B): an overcomplete patch dictionary,
top-T per patch, dropout kept at test time, a dead-zone ternary quantizer, a transposed-conv
decoder back to image size, then a standard classifier; E random encoder draws averaged on
softmax. With `dropout=0` it is the non-random variant (§4.2.2.3).

Attacks go through BPDA surrogates: the top-T mask lets gradients through the top U > T
coefficients (U = 2T unless given: the dissertation's strongest setting, App. B.5 and Table 4.5),
the quantizer through a smooth step of the given steepness (4.0, App. B.4).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from advbench.models.bpda import BPDALayer
from advbench.models.randomness import DrawScope
from advbench.models.resnet import ResNet18


def learn_dictionary(
    images: torch.Tensor,
    atoms: int,
    patch: int,
    stride: int,
    alpha: float = 1.0,
    max_patches: int = 20000,
    seed: int = 0,
    iterations: int = 1000,
    batch_size: int = 256,
) -> torch.Tensor:
    """Unit-norm atoms (atoms, C, patch, patch) learned from clean image patches, without labels (eq. 4.4).

    Mairal et al.'s online algorithm (scikit-learn's MiniBatchDictionaryLearning), run for exactly
    `iterations` minibatch steps, without early stopping: the dissertation's "number of iterations
    in dictionary learning is chosen as 1000 to ensure convergence" (§4.2.4, App. B.3), read as
    the online algorithm's iterations (scikit-learn's former `n_iter`). Left to its default
    stopping rule, scikit-learn stops this problem after about two passes (81 steps of 256).
    """
    from sklearn.decomposition import MiniBatchDictionaryLearning

    patches = (
        F.unfold(images, patch, stride=stride)
        .transpose(1, 2)
        .reshape(-1, images.shape[1] * patch * patch)
    )
    rng = np.random.default_rng(seed)
    chosen = patches[
        rng.choice(len(patches), size=min(max_patches, len(patches)), replace=False)
    ].numpy()
    learner = MiniBatchDictionaryLearning(
        n_components=atoms, alpha=alpha, batch_size=batch_size, random_state=seed
    )
    order = np.empty(0, dtype=np.int64)
    for _ in range(iterations):
        if len(order) < batch_size:  # a fresh pass over the patches, in a new order
            order = np.concatenate([order, rng.permutation(len(chosen))])
        batch, order = order[:batch_size], order[batch_size:]
        learner.partial_fit(chosen[batch])
    atoms_ = torch.tensor(learner.components_, dtype=torch.float32)
    atoms_ = atoms_ / atoms_.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return atoms_.view(atoms, images.shape[1], patch, patch)


class TopT(BPDALayer):
    """Keep the T largest |coefficients| of each patch (over the atom axis); attack mode routes gradients through the top U."""

    def __init__(self, top_t: int, top_u: int | None = None) -> None:
        super().__init__()
        self.top_t, self.top_u = top_t, top_u if top_u is not None else top_t

    def mask(self, x: torch.Tensor, k: int) -> torch.Tensor:
        idx = x.abs().topk(k, dim=1).indices
        return torch.zeros_like(x).scatter_(1, idx, 1.0)

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask(x, self.top_t)

    def surrogate(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.mask(x, self.top_u)


class DeadZoneQuantizer(BPDALayer):
    """sgn(x) ||d_l||_1 where |x| >= beta eps ||d_l||_1, else 0 (eq. 4.6); smooth-step surrogate."""

    atom_l1: torch.Tensor  # a buffer, registered in __init__

    def __init__(
        self,
        atom_l1: torch.Tensor,
        beta: float = 3.0,
        eps: float = 0.03,
        steepness: float | None = 4.0,
    ) -> None:
        super().__init__()
        self.register_buffer("atom_l1", atom_l1.view(1, -1, 1, 1))
        self.beta, self.eps, self.steepness = beta, eps, steepness

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        tau = self.beta * self.eps * self.atom_l1
        return torch.sign(x) * self.atom_l1 * (x.abs() >= tau).to(x.dtype)

    def surrogate(self, x: torch.Tensor) -> torch.Tensor:
        if self.steepness is None:
            return x
        tau = self.beta * self.eps * self.atom_l1
        scale = self.steepness / tau  # steepness relative to the threshold
        return self.atom_l1 * (torch.sigmoid(scale * (x - tau)) - torch.sigmoid(scale * (-x - tau)))


class SparseCodingFrontEnd(nn.Module):
    """Under the wrapper at inference, each ensemble member's dropout mask is drawn from the input
    row's key (`models.randomness`); training and the bare network use torch's RNG."""

    draws: DrawScope | None = None  # set by the wrapper during a forward pass
    dictionary: torch.Tensor  # a buffer, registered in __init__

    def __init__(
        self,
        num_classes: int = 10,
        in_channels: int = 3,
        input_size: int = 32,
        atoms: int = 500,
        patch: int = 4,
        stride: int = 2,
        top_t: int = 50,
        top_u: int | None = None,
        dropout: float = 0.95,
        beta: float = 3.0,
        eps: float = 8 / 255,
        steepness: float | None = 4.0,
        ensemble: int = 10,
        decoder_channels: int = 64,
        classifier_width: int = 16,
    ) -> None:
        super().__init__()
        if (input_size - patch) % stride:
            raise ValueError(
                "patches must tile the image: (input_size - patch) must be a multiple of stride"
            )
        dictionary = torch.randn(atoms, in_channels, patch, patch)
        dictionary = dictionary / dictionary.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        self.register_buffer(
            "dictionary", dictionary
        )  # replaced by `learn_dictionary` before training
        self.stride, self.dropout, self.ensemble = stride, dropout, ensemble
        # Attacks route gradients through the top U = 2T coefficients unless told otherwise: the
        # dissertation's strongest attack on this defense (App. B.5; Table 4.5 uses U = 2T = 30).
        self.top = TopT(top_t, min(2 * top_t, atoms) if top_u is None else top_u)
        self.quantizer = DeadZoneQuantizer(dictionary.abs().flatten(1).sum(1), beta, eps, steepness)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(
                atoms, decoder_channels, patch, stride
            ),  # m x m -> N x N, mirroring the patches
            nn.ReLU(),
            nn.ConvTranspose2d(decoder_channels, decoder_channels, 3, 1, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(decoder_channels, in_channels, 3, 1, 1),
            nn.ReLU(),
        )
        self.classifier = ResNet18(num_classes, in_channels, classifier_width)

    # The ensemble averages dropout draws as smoothing averages noisy copies, yet it does not
    # declare `averaged_copies`: with 2 EOT draws instead of 5, 2 images of 64 stayed robust that
    # 5 draws broke, none the other way (docs/notes/performance.md).
    @property
    def is_stochastic(self) -> bool:
        return self.dropout > 0

    def set_dictionary(self, dictionary: torch.Tensor) -> None:
        self.dictionary.copy_(dictionary)
        self.quantizer.atom_l1.copy_(dictionary.abs().flatten(1).sum(1).view(1, -1, 1, 1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        code = self.top(F.conv2d(x, self.dictionary, stride=self.stride))
        if self.dropout > 0:  # kept at test time too (eq. 4.5), without rescaling
            if self.training or self.draws is None:
                keep = torch.rand_like(code) >= self.dropout
            else:  # each call (ensemble member) draws its own stream
                keep = self.draws.uniform(self, len(code), tuple(code.shape[1:])) >= self.dropout
            code = code * keep.to(code.dtype)
        return self.quantizer(code)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        draws = 1 if (self.training or self.dropout == 0) else self.ensemble
        probs = torch.stack(
            [self.classifier(self.decoder(self.encode(x))).softmax(-1) for _ in range(draws)]
        ).mean(0)
        return probs.clamp_min(1e-12).log()
