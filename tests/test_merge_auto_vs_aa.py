"""scripts/merge_auto_vs_aa.py: one panel row from auto_vs_autoattack reports on disjoint images."""

from __future__ import annotations

import pytest

from conftest import load_script


def part(skip: int | None, n: int, clean: int, robust_auto: int, robust_aa: int, missed: list[int], extra: list[int],
         seconds: tuple[float, float], floor: float) -> dict:
    row = {
        "model": "m (random)", "threat": "linf:0.1", "n": n, "clean": clean / n, "robust_auto": robust_auto / n, "robust_autoattack": robust_aa / n,
        "seconds_auto": seconds[0], "seconds_autoattack": seconds[1],
        "auto_in_forward_backward_passes": seconds[0] / floor, "autoattack_in_forward_backward_passes": seconds[1] / floor,
        "autoattack_broke_auto_missed": missed, "auto_broke_autoattack_missed": extra,
    }
    if skip is not None:  # reports made before --skip existed have no such field: their images start at the first
        row["skip"] = skip
    return {"rows": [row]}


def test_parts_sum_counts_floors_and_image_lists() -> None:
    merge = load_script("merge_auto_vs_aa").merge
    (row,) = merge([part(None, 50, 37, 26, 26, [2920], [981], (1100.0, 1000.0), 0.5),
                    part(50, 150, 111, 80, 78, [7], [], (3300.0, 3000.0), 1.5)])
    assert (row.images, row.clean, row.robust_auto, row.robust_autoattack) == (200, 148, 106, 104)
    assert row.autoattack_breaks == 44  # 148 correct, 104 left by AutoAttack
    assert row.caught == 42 / 44
    assert row.autoattack_broke_auto_missed == [2920, 7] and row.auto_broke_autoattack_missed == [981]
    assert row.row() == "| m (random) (200 images) | linf:0.1 | 74.0 | 53.0 | 52.0 | 95.5 % | 4400.0 | 4000.0 | **0.9x** | 2200 | 2000 |"


def test_overlapping_parts_are_refused() -> None:
    merge = load_script("merge_auto_vs_aa").merge
    first = part(None, 50, 37, 26, 26, [], [], (1.0, 1.0), 0.5)
    with pytest.raises(ValueError, match="images 41-190 overlap a part with images 1-50"):
        merge([first, part(40, 150, 111, 80, 78, [], [], (3.0, 3.0), 1.5)])
