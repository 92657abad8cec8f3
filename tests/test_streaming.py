"""Streaming separation (wavesep.streaming via Separator.stream): the concatenated outputs equal
the offline result on the whole input (itself tested against one whole forward pass in
test_apply.py), whatever the block sizes, with the stream's end handled exactly."""

import pytest
import torch

from wavesep.api import Separator
from wavesep.errors import AudioError
from test_apply import make_model, noise

TOL = 1e-5

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def run_stream(stream, mix, block):
    parts = {name: [] for name in stream.sources}
    for i in range(0, mix.shape[-1], block):
        for name, wav in stream.process(mix[:, i : i + block]).items():
            parts[name].append(wav)
    for name, wav in stream.flush().items():
        parts[name].append(wav)
    return {name: torch.cat(p, dim=-1) for name, p in parts.items()}


def assert_equal_stems(out, ref):
    assert list(out) == list(ref)
    for name in ref:
        assert out[name].shape == ref[name].shape, name
        if ref[name].numel():
            assert (out[name] - ref[name]).abs().max() <= TOL, name


CASES = [
    # model changes, input rate, input channels, post-filter
    (dict(), 22050, 2, "none"),
    (dict(), 44100, 2, "ratio-mask"),  # resampled, residual source, post-filter
    (dict(), 48000, 1, "ratio-mask"),  # mono input to a stereo model
    (dict(channels=1), 44100, 2, "ratio-mask"),  # stereo input to a mono model
    (dict(sources=4), 44100, 2, "none"),
    (dict(conv_mode="same", output="direct"), 22050, 2, "ratio-mask"),
    (dict(conv_mode="same", output="direct"), 44100, 2, "none"),
    (dict(), 44100, 2, "ratio-mask-fullband"),  # the top band from the band below, residual source
    (dict(sources=4), 48000, 2, "ratio-mask-fullband"),
]


@pytest.mark.parametrize("changes,rate,channels,postfilter", CASES)
@pytest.mark.parametrize("block", [61, 509, 4093, 40000])  # primes, and more than a window
def test_stream_equals_offline(changes, rate, channels, postfilter, block):
    sep = Separator(make_model(**changes), device="cpu", precision="float32", postfilter=postfilter)
    mix = noise(channels, 30011, scale=0.3)
    ref = sep.separate_tensor(mix, rate)
    out = run_stream(sep.stream(rate, channels, hop_seconds=0.05), mix, block)
    assert_equal_stems(out, ref)


@pytest.mark.parametrize("length", [0, 1, 100, 3001, 9000])
def test_one_sample_blocks_and_short_streams(length):
    sep = Separator(make_model(), device="cpu", precision="float32", postfilter="ratio-mask")
    mix = noise(2, length, scale=0.3)
    ref = sep.separate_tensor(mix, 44100) if length else {n: torch.zeros(2, 0) for n in sep.sources}
    out = run_stream(sep.stream(44100, 2, hop_seconds=0.03), mix, 1)
    assert_equal_stems(out, ref)


def test_stems_come_out_before_the_end_and_empty_blocks_are_fine():
    sep = Separator(make_model(), device="cpu", precision="float32", postfilter="ratio-mask")
    stream = sep.stream(44100, 2, hop_seconds=0.03)
    mix = noise(2, 44100, scale=0.3)
    got = 0
    for i in range(0, 44100, 4410):
        got += stream.process(mix[:, i : i + 4410])["vocals"].shape[-1]
        assert stream.process(mix[:, :0])["vocals"].shape[-1] == 0
    assert 0 < got < 44100  # most of the second has come out, the latency is held back
    assert stream.received - stream.returned == 44100 - got
    assert got + stream.flush()["vocals"].shape[-1] == 44100


def test_two_stems_and_clamp():
    model = make_model(sources=4)
    sep = Separator(model, device="cpu", precision="float32", two_stems="vocals", clip="clamp")
    mix = noise(2, 20011, scale=2.0)
    ref = sep.separate_tensor(mix, 44100)
    out = run_stream(sep.stream(44100, 2, hop_seconds=0.05), mix, 1237)
    assert_equal_stems(out, ref)
    assert out["no_vocals"].abs().max() <= 1.0


def test_stream_errors():
    sep = Separator(make_model(), device="cpu", precision="float32")
    stream = sep.stream(44100, 2)
    with pytest.raises(ValueError, match="shape"):
        stream.process(torch.zeros(1, 10))
    bad = torch.zeros(2, 100)
    bad[1, 50] = float("nan")
    stream.process(torch.zeros(2, 30))
    with pytest.raises(AudioError, match="block starting at sample 30"):
        stream.process(bad)
    stream.flush()
    with pytest.raises(RuntimeError):
        stream.process(torch.zeros(2, 10))
    with pytest.raises(RuntimeError):
        stream.flush()
    with pytest.raises(ValueError, match="rescale"):
        Separator(make_model(), device="cpu", clip="rescale").stream(44100, 2)
    with pytest.raises(ValueError, match="hop_seconds"):
        sep.stream(44100, 2, hop_seconds=0)
