"""Every error caused by user input exits 2 with one line that names the real cause (issue 40,
item 6), through the real console script: files and folders that are missing, empty, unreadable,
truncated or of the wrong kind; weights that do not fit the model; malformed model cards; output
paths that cannot be written; zero or negative counts where at least one is needed.

Every case fails before any evaluation runs, so the table takes seconds per row. Exit 1 stays for
"the gate failed" and `--strict` on an unreliable verdict (tests/test_bad_inputs.py).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
from test_bad_inputs_cli import advbench, assert_one_line_error
from torch import nn

from advbench.models.card import ModelCard, save_checkpoint
from advbench.models.registry import MODELS

TINY = "from torch import nn\n\ndef Net():\n    return nn.Sequential(nn.Flatten(), nn.Linear(64, 10))\n"


def tiny_state(inputs: int = 64) -> dict[str, torch.Tensor]:
    return nn.Sequential(nn.Flatten(), nn.Linear(inputs, 10)).state_dict()


def write_weights(root: Path) -> None:
    """External weights: good, of the wrong shape, and broken in every way a file can be."""
    (root / "tiny.py").write_text(TINY)
    torch.save(tiny_state(), root / "tiny.pt")
    good = (root / "tiny.pt").read_bytes()
    torch.save(tiny_state(32), root / "wrong.pt")
    torch.save({"foo": torch.zeros(3)}, root / "keys.pt")
    torch.save({"1.weight": 3, "1.bias": torch.zeros(10)}, root / "nontensor.pt")
    torch.save([torch.zeros(1)], root / "list.pt")
    (root / "trunc.pt").write_bytes(good[: len(good) // 2])
    (root / "empty.pt").write_bytes(b"")
    (root / "dot.pt").write_bytes(b".")  # torch.load's message was "pop from empty list"
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in tiny_state().items()}, str(root / "tiny.safetensors"))
    (root / "trunc.safetensors").write_bytes((root / "tiny.safetensors").read_bytes()[:100])
    (root / "locked.pt").write_bytes(good)
    (root / "locked.pt").chmod(0)


def write_image_folders(root: Path) -> None:
    (root / "imgs-empty").mkdir()
    (root / "imgs-no-images" / "cat").mkdir(parents=True)
    (root / "imgs-no-images" / "cat" / "notes.txt").write_text("no image here")
    (root / "imgs-ok" / "cat").mkdir(parents=True)
    from PIL import Image

    Image.new("RGB", (4, 4)).save(root / "imgs-ok" / "cat" / "a.png")
    (root / "imgs-bad" / "cat").mkdir(parents=True)
    (root / "imgs-bad" / "cat" / "a.png").write_bytes(b"not a png")


def write_zoos(root: Path) -> None:
    """zoo-ok holds an (untrained) rn18-nt card for digits; each other zoo breaks one thing."""
    net = MODELS.get("rn18-nt").build(width=4, num_classes=10, in_channels=1)
    card = ModelCard(
        name="rn18-nt", dataset="digits", weights="rn18-nt.safetensors", sha256="", input_shape=[1, 8, 8],
        num_classes=10, kwargs={"width": 4, "num_classes": 10, "in_channels": 1},
    )
    save_checkpoint(net, card, root / "zoo-ok" / "digits")

    def variant(name: str, edit_card: tuple[str, str] | None = None, weights: bytes | None = None) -> None:
        folder = root / name / "digits"
        shutil.copytree(root / "zoo-ok" / "digits", folder)
        card_file, weights_file = folder / "rn18-nt.yaml", folder / "rn18-nt.safetensors"
        if edit_card:
            text = card_file.read_text()
            assert edit_card[0] in text
            card_file.write_text(text.replace(*edit_card))
        if weights is not None:
            from advbench.models.card import file_sha256

            weights_file.write_bytes(weights)
            sha = ModelCard.from_yaml(card_file).sha256
            card_file.write_text(card_file.read_text().replace(sha, file_sha256(weights_file)))

    raw = (root / "zoo-ok" / "digits" / "rn18-nt.safetensors").read_bytes()
    variant("zoo-yaml", ("name: rn18-nt", "name: [rn18-nt"))
    variant("zoo-not-utf8")
    (root / "zoo-not-utf8" / "digits" / "rn18-nt.yaml").write_bytes(b"name: \xff\xfe\n")
    variant("zoo-shape", ("input_shape:", "input_shape: [1, x, 8]\nold_shape:"))
    variant("zoo-other-model", ("name: rn18-nt", "name: kap-rn18"))
    variant("zoo-kwarg", ("  width: 4", "  width: 4\n  dropout: 0.5"))
    variant("zoo-width", ("  width: 4", "  width: 8"))
    variant("zoo-truncated", weights=raw[: len(raw) // 2])
    variant("zoo-tampered")
    tampered = root / "zoo-tampered" / "digits" / "rn18-nt.safetensors"
    flipped = bytearray(tampered.read_bytes())
    flipped[-1] ^= 1
    tampered.write_bytes(bytes(flipped))
    variant("zoo-no-weights")
    (root / "zoo-no-weights" / "digits" / "rn18-nt.safetensors").unlink()
    # The "input_shape:" edit leaves the old list under an unknown key: drop it.
    shape_card = root / "zoo-shape" / "digits" / "rn18-nt.yaml"
    shape_card.write_text(shape_card.read_text().replace("old_shape:\n- 1\n- 8\n- 8\n", ""))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("user-errors")
    write_weights(root)
    write_image_folders(root)
    write_zoos(root)
    (root / "a-file").write_text("not a folder")
    (root / "cifar" / "cifar-10-batches-py").mkdir(parents=True)
    (root / "cifar" / "cifar-10-batches-py" / "test_batch").write_bytes(b".")  # a garbled pickle
    (root / "fmnist").mkdir()
    for stem in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (root / "fmnist" / f"{stem}.gz").write_bytes(b"\x1f\x8b\x08\x00cut short")
    (root / "interrupted").mkdir()
    (root / "interrupted" / "rn18-nt.train-state.safetensors").write_bytes(b"cut short")
    suite = "dataset: digits\nn: 2\nchecks: false\nthreats: [{norm: linf, eps: [0.1]}]\n"
    (root / "suite-model.yaml").write_text(suite + "models: [rn18-nt, nosuchmodel]\nattacks: [fgsm]\n")
    (root / "suite-attack.yaml").write_text(suite + "models: [rn18-nt]\nattacks: [fgsm, 'pgd:steps=0']\n")
    return root


FILE_EVAL = ["eval", "--dataset", "digits", "--n", "2", "--attack", "fgsm", "--no-checks", "--device", "cpu", "--db", "{tmp}/r.sqlite"]
EXTERNAL = [*FILE_EVAL, "--model", "file:{tmp}/tiny.py:Net", "--weights"]
ZOO_EVAL = [*FILE_EVAL, "--model", "rn18-nt", "--zoo"]
FASHION = ["eval", "--dataset", "fashion-mnist", "--model", "file:{tmp}/tiny.py:Net", "--weights", "{tmp}/tiny.pt", "--db", "{tmp}/r.sqlite"]
TRAIN = ["train", "--model", "rn18-nt", "--dataset", "digits", "--device", "cpu", "--out", "{tmp}/trained"]
ROOT = os.geteuid() == 0 if hasattr(os, "geteuid") else False
UNREADABLE = pytest.mark.skipif(ROOT, reason="root reads a file whatever its mode")

# (id, command line with {tmp} for the fixture's folder, fragment of the one error line[, marks])
CASES = [
    # External weights (--weights): missing, the wrong kind, empty, unreadable, truncated, not a state dict.
    ("weights-missing", [*EXTERNAL, "{tmp}/nosuch.pt"], "weights file {tmp}/nosuch.pt does not exist"),
    ("weights-folder", [*EXTERNAL, "{tmp}"], "weights file {tmp} is a folder, not a file"),
    ("weights-empty", [*EXTERNAL, "{tmp}/empty.pt"], "weights file {tmp}/empty.pt is empty"),
    ("weights-unreadable", [*EXTERNAL, "{tmp}/locked.pt"], "cannot read weights file {tmp}/locked.pt: Permission denied", UNREADABLE),
    ("weights-truncated", [*EXTERNAL, "{tmp}/trunc.pt"], "weights file {tmp}/trunc.pt is truncated or corrupt: its zip archive is incomplete"),
    ("weights-truncated-safetensors", [*EXTERNAL, "{tmp}/trunc.safetensors"], "weights file {tmp}/trunc.safetensors is not valid safetensors"),
    ("weights-garbage", [*EXTERNAL, "{tmp}/dot.pt"], "weights file {tmp}/dot.pt is neither a torch checkpoint (torch.save) nor safetensors"),
    ("weights-not-a-state-dict", [*EXTERNAL, "{tmp}/list.pt"], "weights file {tmp}/list.pt holds list, not a state dict"),
    # Weights that do not fit the model: shapes, keys, values.
    ("weights-wrong-shape", [*EXTERNAL, "{tmp}/wrong.pt"],
     "weights file {tmp}/wrong.pt does not fit file:{tmp}/tiny.py:Net: 1.weight has shape (10, 32) in the file, (10, 64) in the model"),
    ("weights-wrong-keys", [*EXTERNAL, "{tmp}/keys.pt"], "does not fit file:{tmp}/tiny.py:Net: missing key(s) 1.weight, 1.bias (2 in all); unexpected key(s) foo"),
    ("weights-not-tensors", [*EXTERNAL, "{tmp}/nontensor.pt"], "'1.weight' holds int, not a tensor"),
    ("model-does-not-take-the-images", ["eval", "--no-checks", "--device", "cpu", "--db", "{tmp}/r.sqlite", "--dataset", "imagefolder:{tmp}/imgs-ok", "--model", "file:{tmp}/tiny.py:Net", "--weights", "{tmp}/tiny.pt"],
     "model file:{tmp}/tiny.py:Net cannot take the imagefolder:{tmp}/imgs-ok images (shape (3, 4, 4)): mat1 and mat2 shapes cannot be multiplied"),
    ("certify-model-does-not-take-the-images", ["certify", "--dataset", "imagefolder:{tmp}/imgs-ok", "--model", "file:{tmp}/tiny.py:Net",
                                                "--weights", "{tmp}/tiny.pt", "--device", "cpu", "--db", "{tmp}/r.sqlite"], "cannot take the imagefolder:"),
    ("weights-for-a-zoo-model", [*ZOO_EVAL, "{tmp}/zoo-ok", "--weights", "{tmp}/tiny.pt"], "--weights goes with an external model"),
    ("weights-not-given", [*FILE_EVAL, "--model", "file:{tmp}/tiny.py:Net"], "file:{tmp}/tiny.py:Net needs --weights"),
    ("model-file-is-a-folder", [*FILE_EVAL, "--model", "file:{tmp}:Net", "--weights", "{tmp}/tiny.pt"], "external model file {tmp} is a folder, not a file"),
    ("model-file-missing", [*FILE_EVAL, "--model", "file:{tmp}/nosuch.py:Net", "--weights", "{tmp}/tiny.pt"], "external model file {tmp}/nosuch.py does not exist"),
    # Image folders: named as missing folders, never as a missing checkpoint.
    ("imagefolder-missing", ["eval", "--model", "rn18-nt", "--dataset", "imagefolder:{tmp}/nosuch", "--db", "{tmp}/r.sqlite"],
     "image folder {tmp}/nosuch (--dataset imagefolder:PATH) does not exist"),
    ("imagefolder-a-file", ["certify", "--model", "rn18-nt", "--dataset", "imagefolder:{tmp}/a-file", "--db", "{tmp}/r.sqlite"],
     "image folder {tmp}/a-file (--dataset imagefolder:PATH) is a file, not a folder"),
    ("imagefolder-empty", ["eval", "--model", "rn18-nt", "--dataset", "imagefolder:{tmp}/imgs-empty", "--db", "{tmp}/r.sqlite"],
     "image folder {tmp}/imgs-empty has no class sub-folders"),
    ("imagefolder-no-images", ["eval", "--model", "rn18-nt", "--dataset", "imagefolder:{tmp}/imgs-no-images", "--db", "{tmp}/r.sqlite"],
     "image folder {tmp}/imgs-no-images holds no images"),
    ("imagefolder-bad-image", ["eval", "--model", "file:{tmp}/tiny.py:Net", "--weights", "{tmp}/tiny.pt", "--dataset", "imagefolder:{tmp}/imgs-bad",
                               "--db", "{tmp}/r.sqlite", "--device", "cpu"], "cannot decode image {tmp}/imgs-bad/cat/a.png"),
    ("imagefolder-no-path", ["eval", "--model", "rn18-nt", "--dataset", "imagefolder:", "--db", "{tmp}/r.sqlite"], "write an image folder dataset as imagefolder:PATH"),
    ("train-imagefolder-missing", ["train", "--model", "rn18-nt", "--dataset", "imagefolder:{tmp}/nosuch", "--device", "cpu", "--out", "{tmp}/trained"],
     "image folder {tmp}/nosuch (--dataset imagefolder:PATH) does not exist"),
    ("train-state-corrupt", [*TRAIN[:-1], "{tmp}/interrupted", "--resume", "--epochs", "1", "--max-train", "10"],
     "training state {tmp}/interrupted/rn18-nt.train-state.safetensors cannot be read (truncated or corrupt?)"),
    # --data-dir
    ("data-dir-missing", [*FASHION, "--data-dir", "{tmp}/nodata"], "the data folder {tmp}/nodata (--data-dir) does not exist"),
    ("data-dir-a-file", [*FASHION, "--data-dir", "{tmp}/a-file"], "the data folder {tmp}/a-file (--data-dir) is a file, not a folder"),
    ("cifar-batch-corrupt", [*FASHION, "--dataset", "cifar10", "--data-dir", "{tmp}/cifar"],
     "cannot read CIFAR batch {tmp}/cifar/cifar-10-batches-py/test_batch (truncated or corrupt?)"),
    ("idx-file-truncated", [*FASHION, "--data-dir", "{tmp}/fmnist"], "cannot read IDX file {tmp}/fmnist/t10k-images-idx3-ubyte.gz (truncated or corrupt?)"),
    # Model cards and checkpoints in a --zoo.
    ("zoo-a-file", [*ZOO_EVAL, "{tmp}/a-file"], "the model zoo folder {tmp}/a-file (--zoo) is a file, not a folder"),
    ("card-not-yaml", [*ZOO_EVAL, "{tmp}/zoo-yaml"], "cannot read model card {tmp}/zoo-yaml/digits/rn18-nt.yaml"),
    ("card-not-utf8", [*ZOO_EVAL, "{tmp}/zoo-not-utf8"], "cannot read model card {tmp}/zoo-not-utf8/digits/rn18-nt.yaml: it is not UTF-8 text"),
    ("card-bad-value", [*ZOO_EVAL, "{tmp}/zoo-shape"], "'input_shape' must be [channels, height, width], three integers >= 1, got the list [1, 'x', 8]"),
    ("card-of-another-model", [*ZOO_EVAL, "{tmp}/zoo-other-model"], "rn18-nt.yaml is for kap-rn18 on digits, not rn18-nt on digits"),
    ("card-unknown-kwarg", [*ZOO_EVAL, "{tmp}/zoo-kwarg"], "model rn18-nt takes no option(s) dropout"),
    ("checkpoint-does-not-fit", [*ZOO_EVAL, "{tmp}/zoo-width"],
     "does not fit model rn18-nt: stem.conv.weight has shape (4, 1, 3, 3) in the file, (8, 1, 3, 3) in the model"),
    ("checkpoint-truncated", [*ZOO_EVAL, "{tmp}/zoo-truncated"], "is not valid safetensors"),
    ("checkpoint-tampered", [*ZOO_EVAL, "{tmp}/zoo-tampered"], "fails its sha256 check"),
    ("checkpoint-missing", [*ZOO_EVAL, "{tmp}/zoo-no-weights"], "rn18-nt.safetensors is missing"),
    # Suites: every cell's names checked before the first cell runs.
    ("suite-unknown-model", ["run", "{tmp}/suite-model.yaml", "--zoo", "{tmp}/zoo-ok", "--device", "cpu", "--db", "{tmp}/r.sqlite"],
     "unknown model 'nosuchmodel'"),
    ("suite-zero-steps", ["run", "{tmp}/suite-attack.yaml", "--zoo", "{tmp}/zoo-ok", "--device", "cpu", "--db", "{tmp}/r.sqlite"],
     "pgd needs steps >= 1"),
    # Output paths: a folder where a file goes, a file where a folder goes, a path under a file.
    ("leaderboard-out-folder", ["leaderboard", "--out", "{tmp}", "--db", "{tmp}/r.sqlite"], "--out {tmp} is a folder; give a file name"),
    ("leaderboard-out-under-a-file", ["leaderboard", "--out", "{tmp}/a-file/board.md", "--db", "{tmp}/r.sqlite"],
     "--out {tmp}/a-file/board.md cannot be written: {tmp}/a-file is a file, not a folder"),
    ("report-out-folder", ["report", "rn18-nt", "--out", "{tmp}", "--db", "{tmp}/r.sqlite"], "--out {tmp} is a folder; give a file name"),
    ("curve-out-under-a-file", ["curve", "--run", "x", "--eps", "0.1", "--out", "{tmp}/a-file/curve", "--db", "{tmp}/r.sqlite"],
     "--out {tmp}/a-file/curve.csv cannot be written"),
    ("check-update-baseline-folder", ["check", "--update", "--baseline", "{tmp}", "--db", "{tmp}/r.sqlite"], "--baseline {tmp} is a folder; give a file name"),
    ("train-out-a-file", [*TRAIN[:-1], "{tmp}/a-file"], "--out {tmp}/a-file is a file; give a folder"),
    ("analyze-out-a-file", ["analyze", "sparsity", "--model", "rn18-nt", "--out", "{tmp}/a-file"], "--out {tmp}/a-file is a file; give a folder"),
    ("download-dest-a-file", ["download", "cifar10", "--dest", "{tmp}/a-file"], "--dest {tmp}/a-file is a file; give a folder"),
    # Zero, negative or empty values where at least one is needed.
    ("runs-limit-zero", ["runs", "--limit", "0", "--db", "{tmp}/r.sqlite"], "--limit must be at least 1, got 0"),
    ("runs-limit-negative", ["runs", "--limit", "-1", "--db", "{tmp}/r.sqlite"], "--limit must be at least 1, got -1"),
    ("show-empty-run-id", ["show", " ", "--db", "{tmp}/r.sqlite"], "give a run id"),
    ("report-empty-target", ["report", "", "--db", "{tmp}/r.sqlite"], "give a model name or a run id"),
    ("eval-seed-negative", [*ZOO_EVAL, "{tmp}/zoo-ok", "--seed", "-1"], "Invalid value for '--seed'"),
    ("certify-seed-negative", ["certify", "--model", "rn18-nt", "--seed", "-1"], "Invalid value for '--seed'"),
    ("eval-zero-steps", [*ZOO_EVAL, "{tmp}/zoo-ok", "--attack", "pgd:steps=0"], "pgd needs steps >= 1"),
    ("eval-zero-queries", [*ZOO_EVAL, "{tmp}/zoo-ok", "--attack", "square:n_queries=0"], "square needs n_queries >= 1"),
    ("certify-zero-n0", ["certify", "--model", "rn18-nt", "--n0", "0"], "--n0 must be positive, got 0"),
    ("train-width-zero", [*TRAIN, "--width", "0"], "--width must be a whole number of channels >= 1, got 0"),
    ("train-noise-negative", [*TRAIN, "--noise-sigma", "-1"], "--noise-sigma must be a finite number >= 0, got -1.0"),
    ("train-seed-negative", [*TRAIN, "--seed", "-1"], "--seed must be an integer >= 0, got -1"),
    ("train-at-norm", [*TRAIN, "--at-norm", "l3"], "--at-norm is one of linf, l2, l1, l0, not 'l3'"),
    ("train-unknown-model-kwarg", [*TRAIN, "--set", 'model_kwargs={"foo": 1}'], "model rn18-nt takes no option(s) foo"),
    ("train-bad-model-kwarg", [*TRAIN, "--set", 'model_kwargs={"head_pool": "x"}'], "cannot build model rn18-nt with head_pool='x'"),
    ("train-partial-bad-cutoff", [*TRAIN, "--partial", "A1N2", "--cutoff", "nosuch"], "--cutoff 'nosuch' is not a module of this model"),
    ("analyze-zero-channels", ["analyze", "features", "--channels", "3,0", "--out", "{tmp}/analysis"], "--channels must be the input's and at least one"),
    ("analyze-negative-amplitude", ["analyze", "features", "--amplitude", "-1", "--out", "{tmp}/analysis"], "--amplitude must be a positive number"),
    ("analyze-zero-fft-size", ["analyze", "kernels", "--model", "rn18-nt", "--zoo", "{tmp}/zoo-ok", "--dataset", "digits", "--device", "cpu",
                               "--fft-size", "0", "--out", "{tmp}/analysis"], "--fft-size must be at least 1, got 0"),
    ("analyze-snr-zero-sigma", ["analyze", "snr", "--model", "rn18-nt", "--sigma", "0"], "analyze snr sigma must be a positive number, got 0.0"),
]


def _case(case: tuple) -> object:
    """A table row (id, args, needle[, marks]) as a pytest param."""
    return pytest.param(*case[1:3], id=case[0], marks=case[3:])


@pytest.mark.parametrize("args,needle", [_case(c) for c in CASES])
def test_user_error_exits_2_with_one_line(args: list[str], needle: str, files: Path) -> None:
    tmp = str(files)
    proc = advbench(*(a.replace("{tmp}", tmp) for a in args))
    line = assert_one_line_error(proc, 2, needle.replace("{tmp}", tmp))
    assert "Error(s) in loading" not in line and "pop from empty list" not in line
    assert not (files / "trained").exists()  # no training started
