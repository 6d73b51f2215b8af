"""The torch flat-fading path (for GPUs), checked on the CPU against the same theory as the NumPy one."""

import numpy as np
import pytest
import torch
from scipy.stats import chi2, kstest, rice

from gensemcom.channel.torch_flat import flat_fading


def unit_symbols(n: int, seed: int) -> torch.Tensor:
    phase = torch.rand(n, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) * 2 * np.pi
    return torch.polar(torch.ones(n, dtype=torch.float64), phase).to(torch.complex64)


def test_awgn_noise_is_circular_with_variance_no():
    x = unit_symbols(200_000, 1)
    no = 0.3
    y, gains = flat_fading(x, no, torch.Generator().manual_seed(2), k_factor=None)
    noise = (y - x).numpy().astype(np.complex128)
    low, high = chi2.interval(0.999, 2 * x.numel())
    assert low <= 2 * np.sum(np.abs(noise) ** 2) / no <= high
    assert np.var(noise.real) == pytest.approx(no / 2, rel=0.02)
    assert gains.tolist() == [1 + 0j]


@pytest.mark.parametrize("k_factor", [0.0, 4.0])
def test_gains_follow_the_rice_distribution(k_factor):
    x = unit_symbols(20_000, 3)
    _, gains = flat_fading(x, 0.1, torch.Generator().manual_seed(4), k_factor=k_factor, coherence=1)
    sigma = np.sqrt(1 / (2 * (k_factor + 1)))
    nu = np.sqrt(k_factor / (k_factor + 1))
    amplitude = gains.abs().numpy().astype(np.float64)
    assert kstest(amplitude, rice(b=nu / sigma, scale=sigma).cdf).pvalue > 1e-3


def test_blocks_hold_the_gain_and_seeds_repeat():
    x = unit_symbols(95, 5)
    y, gains = flat_fading(x, 1e-6, torch.Generator().manual_seed(6), k_factor=1.0, coherence=10)
    assert gains.shape == (10,)
    ratio = (y / x).numpy()
    for block in range(10):
        np.testing.assert_allclose(ratio[10 * block : 10 * block + 10], gains[block].item(), atol=0.01)
    again, _ = flat_fading(x, 1e-6, torch.Generator().manual_seed(6), k_factor=1.0, coherence=10)
    assert torch.equal(y, again)


def test_invalid_input_is_rejected():
    generator = torch.Generator()
    with pytest.raises(ValueError, match="complex64"):
        flat_fading(torch.ones(4), 0.1, generator)
    with pytest.raises(ValueError, match="K factor"):
        flat_fading(unit_symbols(4, 7), 0.1, generator, k_factor=-1.0)
    with pytest.raises(ValueError, match="noise variance"):
        flat_fading(unit_symbols(4, 7), -0.1, generator)
