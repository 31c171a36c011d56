import torch

from advbench.core.seeding import derive_seed, sample_normal, sample_uniform


def test_sample_noise_depends_only_on_index() -> None:
    idx = torch.arange(100, 164)
    whole = sample_uniform(7, idx, (3, 5))
    part = sample_uniform(7, idx[[10, 3, 40]], (3, 5))
    torch.testing.assert_close(part, whole[[10, 3, 40]], rtol=0, atol=0)


def test_streams_and_seeds_differ() -> None:
    idx = torch.arange(10)
    a = sample_uniform(1, idx, (50,))
    assert not torch.equal(a, sample_uniform(2, idx, (50,)))
    assert not torch.equal(a, sample_uniform(1, idx, (50,), stream=1))


def test_distributions_look_right() -> None:
    u = sample_uniform(3, torch.arange(2000), (256,))
    assert 0.0 < float(u.min()) and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.01
    z = sample_normal(3, torch.arange(2000), (256,))
    assert abs(float(z.mean())) < 0.01 and abs(float(z.std()) - 1.0) < 0.01


def test_derive_seed_is_stable() -> None:
    assert derive_seed(0, "pgd", 0.1) == derive_seed(0, "pgd", 0.1)
    assert derive_seed(0, "pgd", 0.1) != derive_seed(0, "pgd", 0.2)
