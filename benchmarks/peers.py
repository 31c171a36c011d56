"""advbench side by side with torchattacks, Foolbox 3 and ART: PGD-20 and AutoAttack, one model, one batch.

PGD-20 in Linf (step 2.5 * eps / 20, i.e. 0.125 * eps, one uniform random start), the same
settings in every library: advbench `build_attack("pgd")` (its default, which stops a sample's
steps once it is misclassified) and, for a like-for-like row, `pgd:early_stop=false`;
`torchattacks.PGD`; Foolbox 3 `LinfPGD(steps=20, rel_stepsize=0.125)`; ART
`ProjectedGradientDescent` on a `PyTorchClassifier`. AutoAttack (version standard: APGD-CE,
APGD-T, FAB-T, Square 5000) where a peer ships it: advbench `build_attack("autoattack")`, which
runs the authors' `pyautoattack`, vs `torchattacks.AutoAttack` twice: as it comes, and with its
APGD-CE, APGD-T and FAB-T set to the standard version's 100 iterations (torchattacks builds them
with its own default of 10, so out of the box it does about a tenth of the gradient work; Square's
5000 queries are the same). `--aa-n K` runs the AutoAttack rows on the first K images only
(Square's queries make them slow on a CPU). Foolbox has no AutoAttack; ART's
`AutoAttack` is a different ensemble by default (APGD-CE and APGD-DLR with 5 restarts each,
DeepFool, Square with 5 restarts), so it is not timed against the standard one.

Every row attacks the same model (a RobustModel: [0,1] inputs, logits out) on the same batch,
from torch tensors to adversarial torch tensors (ART's numpy round trip included: it is part of
using ART). Rounds are interleaved (each row once per round, round after round), after one
warm-up call of each PGD row (AutoAttack rows are not warmed up: one call costs as much as a
round, and the PGD rows have already warmed the model's kernels). Seconds are medians over
rounds; a row's ratio is the median of its per-round ratios to advbench's time for the same
attack in that round. Robust accuracy is recomputed here for every row, by one forward pass of
the model on the x_adv the library returned (from the last round), and `max_linf` checks that
each x_adv stays inside the eps-ball.

A peer that is not installed (they are the optional `bench` extra, installed with --no-deps
beside our torch) is reported as "not installed" and the rest still runs; a peer that fails at
run time is reported with its error.
Run: python benchmarks/peers.py [--model madry-cnn-at] [--n 500] [--eps 0.1] [--repeats 3] [--skip-autoattack | --aa-n K]
     [--device auto] [--threads N] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from timing import fashion_batch, time_once  # benchmarks/timing.py, beside this script

from advbench.attacks import build_attack
from advbench.core.device import resolve_device
from advbench.core.provenance import git_commit
from advbench.core.threat import Norm, ThreatModel
from advbench.models.card import load_model

STEPS = 20
REL_STEPSIZE = 2.5 / STEPS  # Madry et al.: step 2.5 * eps / steps
AA_ITERATIONS = 100  # APGD-CE, APGD-T and FAB-T iterations in AutoAttack's standard version
PEERS = {"torchattacks": "torchattacks", "foolbox": "foolbox", "art": "adversarial-robustness-toolbox"}


@dataclass
class Row:
    library: str
    attack: str
    run: Callable[[], torch.Tensor] | None  # returns x_adv on the batch's device
    status: str = "ok"  # ok | not installed | import failed: ... | failed: ...
    baseline: str = ""  # the advbench row this one is a ratio to ("" for advbench's own baselines)
    times: list[float] = field(default_factory=list)
    x_adv: torch.Tensor | None = None
    warm_up: bool = True

    @property
    def key(self) -> str:
        return f"{self.library} {self.attack}"


def import_peer(module: str) -> tuple[object | None, str]:
    """(module, "ok"), or (None, why not): not installed, or installed but not importable here."""
    if importlib.util.find_spec(module) is None:
        return None, "not installed"
    try:
        return importlib.import_module(module), "ok"
    except Exception as err:  # noqa: BLE001 (any failure, e.g. a torchvision built for another torch)
        return None, f"import failed: {type(err).__name__}: {err}"


def version_of(module: object | None, dist: str) -> str | None:
    if module is None:
        return None
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return getattr(module, "__version__", None)


def build_rows(model, x, y, idx, eps: float, seed: int, aa_n: int) -> tuple[list[Row], dict[str, str | None]]:
    device = x.device
    threat = ThreatModel(Norm.LINF, eps)
    step = REL_STEPSIZE * eps
    pgd_label = f"PGD-{STEPS}"
    modules = {name: import_peer(name) for name in PEERS}
    versions = {name: version_of(mod, PEERS[name]) for name, (mod, _) in modules.items()}
    rows: list[Row] = []

    def advbench_row(spec: str, label: str, baseline: str = "") -> Row:
        attack = build_attack(spec)[1]
        return Row("advbench", label, lambda: attack(model, x, y, threat, idx, seed).x_adv, baseline=baseline)

    base_pgd = advbench_row("pgd", pgd_label)
    rows += [base_pgd, advbench_row("pgd:early_stop=false", f"{pgd_label}, early_stop=false", base_pgd.key)]

    ta, ta_status = modules["torchattacks"]
    if ta is not None:
        ta_pgd = ta.PGD(model, eps=eps, alpha=step, steps=STEPS, random_start=True)
        rows.append(Row("torchattacks", pgd_label, lambda: ta_pgd(x, y), baseline=base_pgd.key))
    else:
        rows.append(Row("torchattacks", pgd_label, None, ta_status))

    fb, fb_status = modules["foolbox"]
    if fb is not None:
        fmodel = fb.PyTorchModel(model, bounds=(0, 1), device=device)
        fb_pgd = fb.attacks.LinfPGD(steps=STEPS, rel_stepsize=REL_STEPSIZE, random_start=True)
        rows.append(Row("foolbox", pgd_label, lambda: fb_pgd(fmodel, x, y, epsilons=eps)[1], baseline=base_pgd.key))
    else:
        rows.append(Row("foolbox", pgd_label, None, fb_status))

    art, art_status = modules["art"]
    if art is not None:
        try:
            import numpy as np
            from art.attacks.evasion import ProjectedGradientDescent
            from art.estimators.classification import PyTorchClassifier
        except Exception as err:  # noqa: BLE001 (reported in the row, like a failed import)
            rows.append(Row("art", pgd_label, None, f"import failed: {type(err).__name__}: {err}"))
        else:
            classifier = PyTorchClassifier(
                model=model,
                loss=torch.nn.CrossEntropyLoss(),
                input_shape=tuple(x.shape[1:]),
                nb_classes=model.num_classes,
                clip_values=(0.0, 1.0),
                device_type="gpu" if device.type == "cuda" else "cpu",
            )
            art_pgd = ProjectedGradientDescent(
                classifier, norm=np.inf, eps=eps, eps_step=step, max_iter=STEPS, num_random_init=1, batch_size=len(x), verbose=False
            )
            x_np, y_np = x.cpu().numpy(), y.cpu().numpy()
            rows.append(Row("art", pgd_label, lambda: torch.from_numpy(art_pgd.generate(x_np, y=y_np)).to(device), baseline=base_pgd.key))
    else:
        rows.append(Row("art", pgd_label, None, art_status))

    if aa_n > 0:
        # AutoAttack rows attack the first aa_n images of the batch (all of it by default).
        xa, ya, ia = x[:aa_n], y[:aa_n], idx[:aa_n]
        aa_label = "AutoAttack standard"
        aa = build_attack("autoattack:version=standard")[1]
        base_aa = Row("advbench", aa_label, lambda: aa(model, xa, ya, threat, ia, seed).x_adv, warm_up=False)
        rows.append(base_aa)
        if ta is not None:
            ta_aa = ta.AutoAttack(model, norm="Linf", eps=eps, version="standard", n_classes=model.num_classes, seed=seed)
            rows.append(Row("torchattacks", f"{aa_label} (its defaults)", lambda: ta_aa(xa, ya), baseline=base_aa.key, warm_up=False))
            # torchattacks builds APGD-CE, APGD-T and FAB-T with its own default of 10 iterations;
            # AutoAttack's standard version (pyautoattack) runs 100. This row matches that budget.
            ta_aa100 = ta.AutoAttack(model, norm="Linf", eps=eps, version="standard", n_classes=model.num_classes, seed=seed)
            for sub in ta_aa100._autoattack.attacks:
                if isinstance(sub, (ta.APGD, ta.APGDT, ta.FAB)):
                    sub.steps = AA_ITERATIONS
            rows.append(Row("torchattacks", f"{aa_label}, {AA_ITERATIONS} iterations", lambda: ta_aa100(xa, ya), baseline=base_aa.key, warm_up=False))
        else:
            rows.append(Row("torchattacks", aa_label, None, ta_status))
    return rows, versions


def call(row: Row, device: torch.device) -> float | None:
    """Time one call of a row; a peer's failure marks the row and returns None (advbench's raises)."""
    holder: dict[str, torch.Tensor] = {}

    def fn() -> None:
        holder["x_adv"] = row.run()

    try:
        seconds = time_once(fn, device)
    except Exception as err:
        if row.library == "advbench":
            raise
        row.status = f"failed: {type(err).__name__}: {err}"
        return None
    row.x_adv = holder["x_adv"].detach()
    return seconds


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="madry-cnn-at")
    parser.add_argument("--n", type=int, default=500, help="Fashion-MNIST test images (seeded selection, seed 0)")
    parser.add_argument("--eps", type=float, default=0.1, help="Linf budget")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (after a warm-up of the PGD rows)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-autoattack", action="store_true", help="PGD rows only (a quick run)")
    parser.add_argument("--aa-n", type=int, help="AutoAttack rows on the first AA_N images of the batch (default: all --n)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    parser.add_argument("--json", help="also write the full report (times per round, versions) to this file")
    args = parser.parse_args()

    device = resolve_device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    aa_n = 0 if args.skip_autoattack else min(args.n, args.aa_n or args.n)
    torch.manual_seed(args.seed)  # the peers draw their random starts from the global RNG
    model, card = load_model(args.model, "fashion-mnist")
    model.to(device)
    x, y, idx = fashion_batch(args.n, device)
    rows, versions = build_rows(model, x, y, idx, args.eps, args.seed, aa_n)
    live = [r for r in rows if r.run is not None]
    load_before = os.getloadavg()

    for row in live:
        if row.warm_up and row.status == "ok":
            log(f"warm-up {row.key}")
            call(row, device)
    for round_ in range(args.repeats):
        for row in live:
            if row.status != "ok":
                continue
            seconds = call(row, device)
            if seconds is not None:
                row.times.append(seconds)
                log(f"round {round_ + 1}/{args.repeats} {row.key}: {seconds:.2f} s")

    by_key = {r.key: r for r in rows}
    with torch.no_grad():
        clean = (model(x).argmax(1) == y).float().mean().item()
    report_rows = []
    for row in rows:
        entry: dict[str, object] = {"library": row.library, "attack": row.attack, "status": row.status}
        if row.status == "ok" and row.times:
            k = len(row.x_adv)  # AutoAttack rows: the first aa_n images
            with torch.no_grad():
                entry["robust_accuracy"] = round((model(row.x_adv).argmax(1) == y[:k]).float().mean().item(), 4)
                entry["clean_accuracy"] = round((model(x[:k]).argmax(1) == y[:k]).float().mean().item(), 4)
            entry["n"] = k
            entry["max_linf"] = round((row.x_adv - x[:k]).abs().amax().item(), 6)
            entry["seconds"] = round(statistics.median(row.times), 3)
            entry["seconds_per_round"] = [round(t, 3) for t in row.times]
            base = by_key.get(row.baseline)
            if base is None:
                entry["ratio_to_advbench"] = 1.0
            elif base.times and len(base.times) == len(row.times):
                entry["ratio_to_advbench"] = round(statistics.median(t / b for t, b in zip(row.times, base.times)), 3)
            entry["vs"] = row.baseline or None
        report_rows.append(entry)

    report = {
        "model": args.model,
        "checkpoint_sha256": card.sha256,
        "commit": git_commit(),  # `-dirty` when the package differs from the commit
        "device": str(device),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "load_average_1m_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "n": args.n,
        "autoattack_n": aa_n,
        "eps_linf": args.eps,
        "pgd_steps": STEPS,
        "pgd_stepsize": REL_STEPSIZE * args.eps,
        "repeats": args.repeats,
        "seed": args.seed,
        "clean_accuracy": round(clean, 4),
        "versions": versions,
        "rows": report_rows,
    }

    print(f"{args.model}, {args.n} Fashion-MNIST test images, Linf {args.eps}, {args.repeats} interleaved rounds, "
          f"{device}, {torch.get_num_threads()} torch threads, clean accuracy {clean:.4f}")
    print(f"{'library':<13} {'attack':<42} {'n':>5} {'robust acc':>10} {'seconds':>9} {'ratio':>7}")
    for e in report_rows:
        if "seconds" in e:
            ratio = e.get("ratio_to_advbench")
            print(f"{e['library']:<13} {e['attack']:<42} {e['n']:>5} {e['robust_accuracy']:>10.4f} {e['seconds']:>9.2f} {ratio if ratio is not None else '-':>7}")
        else:
            print(f"{e['library']:<13} {e['attack']:<42} {e['status']}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=2)
            fh.write("\n")


if __name__ == "__main__":
    main()
