"""The user path: `advbench eval --model M --n N` (checks on, a fresh database) against
`advbench eval --model M --n N --attack autoattack --no-checks` (AutoAttack through
`pyautoattack`: standard, or `rand` on a model random at inference) on the same images, in one
process, order alternating between rounds.

Prints, per round, both wall times and their ratio, both robust accuracies (each run's stored
worst case over the N images), and what the checks cost: the stored run's `checks_seconds`
(pre-run probes, probe attacks on the survivors, re-checks) as a share of its wall time. Both
sides are the library call the CLI makes (`run_eval`: model and data loading, the clean
judgement, the store), so the figures leave out only the CLI's start-up, which `--cli` adds by
timing both commands themselves. `--contract` times the AutoAttack side as rows stored before
this option did: through the attack contract alone, from the clean judgement on, without loading
or storing (each row records which, `autoattack_side`).

    python benchmarks/user_path.py --model madry-cnn-at --n 100 --json docs/runs/user-path-madry-cnn-at.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from advbench.attacks import build_attack
from advbench.engine import EvalSpec, Runtime, resolve, run_eval
from advbench.store import Store

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Measured:
    seconds: float
    robust: float
    verdict: str | None = None
    checks_seconds: float = 0.0  # the stored run's: probes, probe attacks on the survivors, re-checks
    run_wall_seconds: float = 0.0
    attacks: list[str] = field(default_factory=list)


def evaluation(spec: EvalSpec, device: str, cli: bool) -> Measured:
    """`advbench eval` of `spec` into a fresh database, timed: the library call, or the command with `cli`."""
    with tempfile.TemporaryDirectory(prefix="advbench-bench-") as folder:
        db = Path(folder) / "runs.sqlite"
        t0 = time.perf_counter()
        if cli:
            command = ["advbench", "eval", "--model", spec.model, "--n", str(spec.n), "--eps", str(spec.eps[0]), "--device", device, "--db", str(db)]
            command += [part for a in spec.attacks for part in ("--attack", a)] + ([] if spec.checks else ["--no-checks"])
            subprocess.run(command, check=True, capture_output=True, text=True)
        else:
            run_eval(spec, Runtime(db=db, device=device))
        seconds = time.perf_counter() - t0
        with Store(db) as store:
            record = store.list_runs()[0]
            assert record.summary is not None
            return Measured(seconds, record.summary["per_eps"][0]["worst_case"], record.config.get("verdict"),
                            record.config.get("checks_seconds", 0.0), record.wall_seconds, record.config.get("attack_names", []))


def autoattack_eval(spec: EvalSpec, device: str, cli: bool) -> Measured:
    """`advbench eval --attack autoattack --no-checks` on the same images: the comparison the user makes."""
    return evaluation(EvalSpec(model=spec.model, n=spec.n, eps=spec.eps, checks=False, attacks=("autoattack",)), device, cli)


def autoattack_contract(spec: EvalSpec, device: str) -> Measured:
    """AutoAttack on the run's images (its correctly classified ones), through advbench's attack contract."""
    plan = resolve(EvalSpec(model=spec.model, n=spec.n, eps=spec.eps, checks=False, attacks=("autoattack",)), Runtime(device=device))
    x, y = plan.batch(plan.indices)
    attack = plan.attacks[0]
    t0 = time.perf_counter()
    keep = (~attack.view.judge(x, y).wrong).nonzero().view(-1)
    success = attack.attack(attack.view, x[keep], y[keep], plan.threats[0], plan.indices.to(x.device)[keep], plan.seed).success
    return Measured(time.perf_counter() - t0, (len(keep) - int(success.sum())) / len(x))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="madry-cnn-at")
    parser.add_argument("--n", type=int, default=100)
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--cli", action="store_true", help="time the advbench command itself (a subprocess) instead of the library call")
    parser.add_argument("--contract", action="store_true", help="time the AutoAttack side through the attack contract alone (no loading, no store), as rows stored before did")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    build_attack("autoattack")  # fail before anything runs when pyautoattack is missing
    spec = EvalSpec(model=args.model, n=args.n, eps=(args.eps,))
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    dirty = bool(subprocess.run(["git", "status", "--porcelain", "advbench"], cwd=REPO, capture_output=True, text=True).stdout.strip())
    rounds = []
    print(f"{'round':>5} {'eval s':>8} {'checks %':>8} {'AA s':>8} {'speed-up':>8} {'eval robust':>11} {'AA robust':>9} verdict")
    load_before = os.getloadavg()
    for r in range(args.rounds):
        order = ["eval", "autoattack"] if r % 2 == 0 else ["autoattack", "eval"]
        done = {
            name: evaluation(spec, args.device, args.cli)
            if name == "eval"
            else autoattack_contract(spec, args.device) if args.contract else autoattack_eval(spec, args.device, args.cli)
            for name in order
        }
        a, b = done["eval"], done["autoattack"]
        share = a.checks_seconds / a.run_wall_seconds if a.run_wall_seconds else 0.0
        rounds.append({"order": order, "eval": asdict(a), "autoattack": asdict(b), "speed_up": b.seconds / a.seconds, "checks_share": share})
        print(f"{r:>5} {a.seconds:>8.1f} {100 * share:>8.1f} {b.seconds:>8.1f} {b.seconds / a.seconds:>8.1f} {100 * a.robust:>10.1f}% "
              f"{100 * b.robust:>8.1f}% {a.verdict}")
    if args.json:
        report = {"commit": commit + ("-dirty" if dirty else ""), "model": args.model, "n": args.n, "eps": args.eps, "device": args.device,
                  "cli": args.cli, "autoattack_side": "contract" if args.contract else "run_eval", "torch_threads": torch.get_num_threads(), "load_average_before": load_before,
                  "load_average_after": os.getloadavg(), "rounds": rounds}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
