"""The channel service builds every model from settings or per request and reports what it applied."""

import numpy as np
import pytest

from gensemcom.channel.link import ChannelParams, apply_channel
from gensemcom.channel.service import MAX_REPORTED_GAINS, params_from_pb, report_to_pb
from gensemcom.shared.pb import semcom_pb2 as pb


def test_request_overrides_only_the_fields_it_sets() -> None:
    defaults = ChannelParams(model="rician", snr_db=10, seed=4, k_factor=3.0, doppler=0.01)
    params = params_from_pb(defaults, pb.ChannelConfig(snr_db=5, doppler=0.05))
    assert (params.model, params.snr_db, params.k_factor, params.doppler, params.seed) == ("rician", 5, 3.0, 0.05, 4)


@pytest.mark.parametrize("config, message", [
    (pb.ChannelConfig(model="rician", k_factor=-1), "k"),
    (pb.ChannelConfig(model="rayleigh", doppler=0.5), "doppler"),
    (pb.ChannelConfig(model="tdl", profile="Z"), "profile"),
])
def test_invalid_parameters_are_value_errors(config: pb.ChannelConfig, message: str) -> None:
    params = params_from_pb(ChannelParams(), config)
    with pytest.raises(ValueError, match=f"(?i){message}"):
        apply_channel(np.ones(100, np.complex64), params, "f")


def test_report_names_the_applied_parameters_and_bounds_the_gain_list() -> None:
    params = ChannelParams(model="rician", snr_db=12, seed=1, k_factor=2.0, doppler=0.02)
    y, report = apply_channel(np.ones(10_000, np.complex64), params, "f")
    msg = report_to_pb(report)
    assert msg.model == "rician" and msg.parameters["k_factor"] == 2.0 and msg.parameters["doppler"] == 0.02
    assert msg.n_gains == 10_000 and len(msg.gain_re) == MAX_REPORTED_GAINS
    # The reported gains are the ones applied: y = g x + n with n of the reported variance.
    g = report.state.per_symbol(y.size)
    assert np.allclose(msg.gain_re, g.real[:MAX_REPORTED_GAINS]) and np.allclose(msg.gain_im, g.imag[:MAX_REPORTED_GAINS])
    assert np.var(y - g) == pytest.approx(msg.noise_variance, rel=0.05)
