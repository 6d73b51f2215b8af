"""Pilot pattern: positions against a brute-force walk of the stream, insert/extract round trips."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gensemcom.shared.modem import pilot_sequence
from gensemcom.shared.pilots import PilotPattern


def brute_force_pilots(pattern: PilotPattern, n: int) -> np.ndarray:
    """Walk the stream symbol by symbol, as the definition reads."""
    out = np.zeros(n, bool)
    for i in range(n):
        if i < pattern.preamble:
            out[i] = True
        elif pattern.spacing:
            out[i] = (i - pattern.preamble) % pattern.spacing < pattern.length
    return out


patterns = st.builds(
    lambda preamble, spacing, length: PilotPattern(preamble, spacing, min(length, spacing - 1) if spacing else 0),
    st.integers(2, 20),
    st.sampled_from([0, 2, 3, 8, 17]),
    st.integers(1, 5),
)


@settings(max_examples=200, deadline=None)
@given(pattern=patterns, offset=st.integers(0, 60), n_data=st.integers(0, 200))
def test_span_holds_exactly_n_data_symbols(pattern: PilotPattern, offset: int, n_data: int) -> None:
    start = pattern.preamble + offset
    n = pattern.span(start, n_data)
    pilots = brute_force_pilots(pattern, start + n + 1)[start:]
    assert (~pilots[:n]).sum() == n_data
    if n_data:
        assert not pilots[n - 1], "a segment ends on its last data symbol"


@settings(max_examples=100, deadline=None)
@given(pattern=patterns, n_data=st.lists(st.integers(0, 90), min_size=1, max_size=4))
def test_segments_laid_end_to_end_reproduce_the_stream_pattern(pattern: PilotPattern, n_data: list[int]) -> None:
    rng = np.random.default_rng(0)
    start, pieces, payloads = pattern.preamble, [], []
    for n in n_data:
        data = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
        iq = pattern.insert(data, start)
        np.testing.assert_array_equal(iq[pattern.data_positions(start, iq.size)], data)
        pieces.append(iq)
        payloads.append(data)
        start += iq.size
    stream = np.concatenate([pilot_sequence(pattern.preamble), *pieces])
    truth = brute_force_pilots(pattern, stream.size)
    np.testing.assert_array_equal(pattern.is_pilot(np.arange(stream.size)), truth)
    index = np.flatnonzero(truth)
    np.testing.assert_array_equal(stream[index], pattern.values(index))
    np.testing.assert_array_equal(stream[~truth], np.concatenate(payloads))


def test_burst_values_are_the_zadoff_chu_sequence_of_the_burst_length() -> None:
    pattern = PilotPattern(preamble=8, spacing=10, length=4)
    np.testing.assert_array_equal(pattern.values(np.arange(8)), pilot_sequence(8))
    np.testing.assert_array_equal(pattern.values(np.array([18, 19, 20, 21])), pilot_sequence(4))
    assert np.allclose(np.abs(pattern.values(np.array([28, 29]))), 1.0)
    assert pattern.overhead == pytest.approx(0.4)


@pytest.mark.parametrize(
    "args, message",
    [
        ((1, 0, 0), "preamble needs at least 2"),
        ((8, 4, 0), "both be 0"),
        ((8, 0, 2), "both be 0"),
        ((8, 4, 4), "below the spacing"),
        ((8, -1, 1), "integer >= 0"),
        ((8.5, 0, 0), "integer >= 0"),
    ],
)
def test_invalid_patterns_are_refused(args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PilotPattern(*args)


def test_asking_for_pilot_values_at_data_positions_is_an_error() -> None:
    with pytest.raises(ValueError, match="carry data"):
        PilotPattern(4, 8, 2).values(np.array([6]))
    with pytest.raises(ValueError, match="start after"):
        PilotPattern(4, 8, 2).span(2, 10)
