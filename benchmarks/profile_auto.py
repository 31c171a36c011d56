"""Where `auto`'s time goes on one model: a cProfile of `auto` on the first N Fashion-MNIST test
images the model classifies correctly (by a vote on a random model), Linf 0.1, one thread.

    python benchmarks/profile_auto.py cpni-w-smooth-soft 24 > profile.txt

Prints the seconds, the breaks and the 45 functions of largest cumulative time. Exploratory: a
profile says where to look (gradients vs votes vs noise draws), not how fast anything is.
"""

import cProfile
import pstats
import sys
import time

import torch

from advbench.attacks import build_attack
from advbench.attacks.wrappers import AttackedModel
from advbench.core.threat import parse_threat
from advbench.data import load_dataset
from advbench.models.card import load_model

name, n = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(1)
model, _ = load_model(name, "fashion-mnist")
data = load_dataset("fashion-mnist", "test")
x, y = data.images[:n], data.labels[:n]
threat = parse_threat("linf:0.1")
model.reseed(0)
keep = (~AttackedModel(model).judge(x, y).wrong).nonzero().view(-1)
attack = build_attack("auto")[1]
view = attack.view(model)
model.reseed(0)
profile = cProfile.Profile()
start = time.perf_counter()
profile.enable()
result = attack(view, x[keep], y[keep], threat, keep, 0)
profile.disable()
print(f"{name}: {time.perf_counter() - start:.1f} s, broke {int(result.success.sum())} of {len(keep)}")
pstats.Stats(profile).sort_stats("cumulative").print_stats(45)
