"""Which stages and EOT draws `auto` should run on random models: robust accuracy (every point
judged by a vote) and seconds of each variant on the first N Fashion-MNIST test images, Linf 0.1.

    python benchmarks/random_stages.py pni-w 64 [THREADS]

Prints one JSON line per (EOT draws, variant). The variants are built from APGD directly, so the
figures do not depend on `auto`'s defaults at the time of the run.
"""
import json
import sys
import time

import torch

from advbench.attacks.apgd import APGD, APGDConfig
from advbench.attacks.auto import Auto
from advbench.attacks.ensemble import robust_ensemble
from advbench.attacks.wrappers import AttackedModel
from advbench.core.threat import parse_threat
from advbench.data import load_dataset
from advbench.models.card import load_model

torch.set_num_threads(int(sys.argv[3]) if len(sys.argv) > 3 else 1)
name, n = sys.argv[1], int(sys.argv[2])
m, _ = load_model(name, "fashion-mnist")
d = load_dataset("fashion-mnist", "test")
x, y = d.images[:n], d.labels[:n]
idx = torch.arange(n)
threat = parse_threat("linf:0.1")
variants = {
    "ce50+t3(clean)": [("ce", APGD(APGDConfig(steps=50))), ("t", APGD(APGDConfig(steps=50, loss="dlr-targeted", n_target_classes=3)))],
    "ce50+dlr50": [("ce", APGD(APGDConfig(steps=50))), ("dlr", APGD(APGDConfig(steps=50, loss="dlr")))],
    "ce100+dlr100 (AA rand-like)": [("ce", APGD(APGDConfig(steps=100))), ("dlr", APGD(APGDConfig(steps=100, loss="dlr")))],
    "auto": [("auto", Auto())],
}
out = []
plan = [(5, "ce50+t3(clean)"), (5, "ce50+dlr50"), (5, "auto"), (10, "ce50+dlr50"), (10, "ce50+t3(clean)"), (20, "ce100+dlr100 (AA rand-like)"), (20, "auto")]
for eot, label in plan:
        attacks = variants[label]
        m.reseed(0)
        view = AttackedModel(m, eot)
        correct = ~view.judge(x, y).wrong
        t = time.perf_counter()
        (o,) = robust_ensemble([(stage, a, view) for stage, a in attacks], x, y, [threat], idx, 0, correct)
        sec = time.perf_counter() - t
        row = {"eot": eot, "variant": label, "robust": float(o.robust.float().mean()), "seconds": sec, "clean": float(correct.float().mean())}
        print(json.dumps(row), flush=True)
