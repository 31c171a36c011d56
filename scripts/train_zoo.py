"""Train the shipped Fashion-MNIST checkpoints with each model's CPU recipe, in order.

Skips models that already have a card unless --force. One log line per epoch goes to stdout;
run it in the background: nohup python scripts/train_zoo.py MODEL ... > results/train_zoo.log &
`--smoke` trains every given model for one epoch on 256 images into a temporary folder.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from advbench.cli.render import epoch_line
from advbench.core.device import resolve_device
from advbench.models.card import REPO_ZOO
from advbench.models.registry import MODELS
from advbench.train import config_for, train_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", help="default: every registered model without a card")
    parser.add_argument("--force", action="store_true")
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--out", type=Path, help="default: the repository's model_zoo/fashion-mnist")
    args = parser.parse_args()
    import advbench.models.table  # noqa: F401  (fills the registry)

    out = Path(tempfile.mkdtemp()) if args.smoke else args.out or REPO_ZOO / "fashion-mnist"
    models = args.models or MODELS.names()
    failed = []
    for name in models:
        if not args.force and not args.smoke and (out / f"{name}.yaml").is_file():
            continue
        extra = {"max_train": 256, "val_images": 100, "epochs": min(1, MODELS.get(name).cpu_train.get("epochs", 1)) or 0} if args.smoke else {}
        if args.smoke and MODELS.get(name).cpu_train.get("epochs", 1) > 1 and MODELS.get(name).recipe == "polarizer":
            extra["epochs"] = 3
        config = config_for(name, **extra)
        print(f"== {name}: recipe {MODELS.get(name).recipe}, {config.epochs} epochs", flush=True)
        t0 = time.time()
        try:
            card = train_model(config, out, resolve_device("auto"), resume=not args.smoke, on_epoch=lambda log: print("  " + epoch_line(log), flush=True))
        except Exception as exc:  # noqa: BLE001 - report and go on with the next model
            print(f"   FAILED: {type(exc).__name__}: {exc}", flush=True)
            failed.append(name)
            continue
        print(f"   done in {(time.time() - t0) / 60:.1f} min, sha256 {card.sha256[:12]}", flush=True)
    if failed:
        print(f"failed: {' '.join(failed)}")
        sys.exit(1)


if __name__ == "__main__":
    main()
