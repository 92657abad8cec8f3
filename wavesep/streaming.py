"""Exact streaming separation: blocks of any size in, stems out as soon as they are exact.

Shape legend: S sources, C audio channels, n block length (samples).

    stream = Separator("default").stream(44100, 2)
    for block in blocks:                    # (C, n) tensors, any n >= 0
        stems = stream.process(block)       # {stem: (C, m)}, m = what is exact so far
    stems = stream.flush()                  # the rest, at the end of the input

The stages are those :func:`wavesep.apply.separate` runs over a whole track, each in a form that
takes its input in order and returns what it can compute exactly so far:

1. channels mapped per block as :func:`wavesep.apply.separate` maps them (mono to a stereo
   model, each channel of a stereo input to a mono model, the "downmix" / "first" / "split"
   policies);
2. per model input: the mixture resampled to the model's rate (:class:`wavesep.audio.ResampleStream`,
   the same libsoxr stream the offline path uses), the network run over windows whose hop is a
   multiple of ``model.stride`` (each window reads the model's context; every window sits on the
   same decimation phase, so the result equals one pass over the whole signal, as the offline
   tiling does), and its estimates resampled back;
3. for a "difference"-output model with resampling, the residual source completed from the
   mixture at the input rate;
4. the post-filter (:class:`wavesep.postfilter.RatioMaskStream`, the same frames as the
   whole-track filter);
5. two-stems merging and clipping: "none" or "clamp". "rescale" scales a whole track by its
   peak, which a stream only knows at its end: it is refused here (use "clamp", or separate the
   file offline, where two passes are possible).

So the concatenated outputs equal ``Separator.separate_tensor`` on the whole input up to float
rounding (tested to 1e-5 in float32, post-filter included); in bfloat16 both are equally
approximate but not equal to each other. One case is ill-conditioned rather than inexact: a
"direct"-output model with resampling and the ratio-mask post-filter. Above the model's Nyquist
frequency its estimates hold only the resampler's leakage (about 1e-7), the mask there is a ratio
of such values, and float rounding moves it; "difference" models (the bundled one) give that
band to the residual source and are exact. "ratio-mask-fullband" replaces the mask above the
Nyquist frequency by one taken from the band below it, but keeps the plain mask in the
band just below it (0.95 - 1 of that frequency, where the resampling filter rolls the estimates
off), so with a "direct" model it is less ill-conditioned, not exact.

Latency (input samples that must arrive after a sample before its stems come out): the
network's right context plus up to one hop (and the few extra output samples of a valid window),
at the model's rate; the two resamplers' filter delays (a few ms with libsoxr's "VHQ"); and with
either ratio-mask post-filter up to ``n_fft - 1`` more samples at the input rate (186 ms at 44.1 kHz).
``benchmarks/bench_stream.py`` measures it.
"""

from __future__ import annotations

import copy
from typing import Optional

import torch
from torch import Tensor

from . import audio
from .apply import (
    CHANNEL_POLICIES,
    _autocast,
    _check_finite,
    _Item,
    _plan_channels,
    _residual_index,
    receptive_margin,
    resolve_device,
    resolve_precision,
)
from .errors import AudioError
from .model import WaveUNet
from .postfilter import POSTFILTERS, make_stream

DEFAULT_HOP_SECONDS = 1.0
STREAM_CLIP_MODES = ("none", "clamp")


def _round_hop(model: WaveUNet, hop_seconds: float) -> int:
    """Hop in model-rate samples: ``hop_seconds`` rounded to a multiple of the stride (>= 1)."""
    if not hop_seconds or not hop_seconds > 0:
        raise ValueError(f"hop_seconds must be > 0, got {hop_seconds}")
    strides = max(1, round(hop_seconds * model.sample_rate / model.stride))
    return strides * model.stride


class _NetworkStream:
    """Model-rate mixture (C_m, n) in, model-rate estimates (S, C_m, k) out, exactly as one pass
    of the network over the whole (zero-padded) signal, window by window."""

    def __init__(self, net: WaveUNet, hop: int, device: torch.device, precision: Optional[str],
                 batch_size: int):
        self.net, self.hop, self.device = net, hop, device
        self.precision, self.batch_size = precision, batch_size
        self.valid = net.config.conv_mode == "valid"
        if self.valid:
            self.lead = net.context[0]
            self.width = net.input_length(hop)
        else:
            self.margin = receptive_margin(net)
            self.width = hop + 2 * self.margin
        self.channels = net.channels
        self.received = 0
        self.next = 0  # next window
        self.b0 = 0  # signal index of buf[:, 0]
        self.buf = torch.zeros(self.channels, 0)

    def _start(self, i: int, padded: Optional[int] = None) -> int:
        """First input sample window i reads (may be negative for valid models)."""
        if self.valid:
            return i * self.hop - self.lead
        a = max(i * self.hop - self.margin, 0)
        return a if padded is None else min(a, padded - self.width)

    def _read(self, a: int, width: int, total: Optional[int]) -> Tensor:
        """Signal samples [a, a + width) (C_m, width), zero outside [0, received)."""
        out = torch.zeros(self.channels, width)
        lo, hi = max(a, self.b0), min(a + width, self.received)
        if hi > lo:
            out[:, lo - a : hi - a] = self.buf[:, lo - self.b0 : hi - self.b0]
        return out

    def _forward(self, windows: list) -> Tensor:
        x = torch.stack(windows).to(self.device)  # (B, C_m, W)
        with torch.inference_mode(), _autocast(self.device, self.precision):
            return self.net(x).float().cpu()  # (B, S, C_m, W_out)

    def _run(self, jobs: list) -> Tensor:
        """jobs: (input start, width, keep from, keep to) -> kept estimates concatenated (S, C_m, k)."""
        kept = []
        for j0 in range(0, len(jobs), self.batch_size):
            batch = jobs[j0 : j0 + self.batch_size]
            y = self._forward([self._read(a, w, None) for a, w, _, _ in batch])
            kept += [y[j, ..., k0:k1] for j, (_, _, k0, k1) in enumerate(batch)]
        return torch.cat(kept, dim=-1) if kept else torch.zeros(self.net.num_sources, self.channels, 0)

    def push(self, x: Tensor) -> Tensor:
        self.buf = torch.cat([self.buf, x], dim=-1)
        self.received += x.shape[-1]
        jobs = []
        while self._start(self.next) + self.width <= self.received:
            a = self._start(self.next)
            k0 = self.next * self.hop - a if not self.valid else 0
            jobs.append((a, self.width, k0, k0 + self.hop))
            self.next += 1
        out = self._run(jobs)
        keep = max(self.b0, self._start(self.next))
        self.buf = self.buf[:, keep - self.b0 :]
        self.b0 = keep
        return out

    def flush(self) -> Tensor:
        total = self.received
        jobs = []
        if self.valid:
            while self.next * self.hop < total:
                a = self._start(self.next)
                jobs.append((a, self.width, 0, min(self.hop, total - self.next * self.hop)))
                self.next += 1
            return self._run(jobs)
        stride = self.net.stride
        padded = -(-total // stride) * stride
        if total and padded <= self.width and self.next == 0:
            # As wavesep.apply.plan_tiles: one window over the whole (stride-padded) signal.
            return self._run([(0, padded, 0, total)])
        while self.next * self.hop < total:
            d0 = self.next * self.hop
            a = self._start(self.next, padded)
            jobs.append((a, self.width, d0 - a, min(d0 + self.hop, total) - a))
            self.next += 1
        return self._run(jobs)


class _ItemChain:
    """One model input: resample to the model's rate -> network -> resample back."""

    def __init__(self, net, sample_rate, hop, device, precision, batch_size):
        rate, c, s = net.sample_rate, net.channels, net.num_sources
        self.to_model = audio.ResampleStream(sample_rate, rate, c)
        self.network = _NetworkStream(net, hop, device, precision, batch_size)
        self.to_input = audio.ResampleStream(rate, sample_rate, s * c)
        self.shape = (s, c)

    def _back(self, stems: Tensor) -> Tensor:
        flat = stems.reshape(self.shape[0] * self.shape[1], stems.shape[-1])  # (S * C_m, k)
        return self.to_input.process(flat).reshape(*self.shape, -1)

    def process(self, mix: Tensor) -> Tensor:
        """(C_m, n) at the input rate -> (S, C_m, k) estimates at the input rate."""
        return self._back(self.network.push(self.to_model.process(mix)))

    def flush(self) -> Tensor:
        head = self._back(self.network.push(self.to_model.flush()))
        tail = self._back(self.network.flush())
        rest = self.to_input.flush().reshape(*self.shape, -1)
        return torch.cat([head, tail, rest], dim=-1)


class SeparationStream:
    """Separates a stream block by block; see the module docstring. Made by
    :meth:`wavesep.api.Separator.stream`, or directly:

    Args:
        model: a :class:`~wavesep.model.WaveUNet` (not modified; used in eval mode).
        sample_rate: Hz of the blocks.
        channels: C of the blocks.
        hop_seconds: network window hop (s at the model's rate, rounded to a multiple of the
            stride): part of the latency; smaller hops cost more computation per second.
        device, precision, channel_policy, residual_source, postfilter: as for
            :func:`wavesep.apply.separate`.
        clip: "none" or "clamp" (see the module docstring for "rescale").
        two_stems: a stem name: return it and ``no_<stem>`` (the sum of the others).
        batch_size: windows per forward pass when several are ready at once.

    ``process(block (C, n))`` and ``flush()`` return {stem: (C_out, m)} float32 CPU tensors;
    ``received`` and ``returned`` count input and output samples so far.
    """

    def __init__(self, model: WaveUNet, sample_rate: int, channels: int, *,
                 hop_seconds: float = DEFAULT_HOP_SECONDS, device="cpu", precision=None,
                 channel_policy: str = "error", residual_source: Optional[str] = None,
                 postfilter: str = "none", clip: str = "none", two_stems: Optional[str] = None,
                 batch_size: int = 1):
        if clip not in STREAM_CLIP_MODES:
            raise ValueError(
                f"clip {clip!r} is not available on a stream (choose one of {STREAM_CLIP_MODES}): "
                "'rescale' needs the whole track's peak, known only at its end"
            )
        if postfilter not in POSTFILTERS:
            raise ValueError(f"postfilter must be one of {POSTFILTERS}, got {postfilter!r}")
        if channel_policy not in CHANNEL_POLICIES:
            raise ValueError(f"channel_policy must be one of {CHANNEL_POLICIES}, got {channel_policy!r}")
        if two_stems is not None and two_stems not in model.sources:
            raise ValueError(f"two_stems={two_stems!r} is not a stem of this model ({', '.join(model.sources)})")
        self.sample_rate, self.channels = int(sample_rate), int(channels)
        if self.sample_rate <= 0 or self.channels <= 0:
            raise ValueError(f"sample_rate and channels must be positive, got {sample_rate}, {channels}")
        self.device = resolve_device(device)
        self.precision = resolve_precision(precision, self.device)
        net = model
        if net.training or next(net.parameters()).device != self.device:
            net = copy.deepcopy(model).to(self.device).eval()
        self.model = net
        self.hop = _round_hop(net, hop_seconds)
        probe = torch.zeros(1, self.channels, 1)
        items, self.out_channels, _ = _plan_channels(probe, net.channels, channel_policy)
        self.items = [(_Item(0, None, it.channel, it.mean)) for it in items]
        self.channel_policy = channel_policy
        self.chains = [_ItemChain(net, self.sample_rate, self.hop, self.device, self.precision, batch_size)
                       for _ in items]
        self.pending = [torch.zeros(net.num_sources, net.channels, 0) for _ in items]
        self.residual = None
        if self.sample_rate != net.sample_rate and net.config.output == "difference":
            self.residual = _residual_index(net, residual_source)
        self.mix = torch.zeros(self.out_channels, 0)  # mixture (C_out) not yet matched by estimates
        self.post = make_stream(postfilter, net.num_sources, self.out_channels, self.sample_rate,  # as apply
                                net.sample_rate, sums_to_mix=net.config.output == "difference")
        self.clip, self.two_stems = clip, two_stems
        self.received = self.returned = 0
        self.returned_network = 0  # input-rate samples that have left the network stage
        self.finished = False

    @property
    def sources(self) -> tuple:
        if self.two_stems is not None:
            return (self.two_stems, f"no_{self.two_stems}")
        return tuple(self.model.sources)

    def process(self, block: Tensor) -> dict:
        """The next (C, n) samples (any n >= 0) -> {stem: (C_out, m)}, the stems now exact."""
        if self.finished:
            raise RuntimeError("SeparationStream.process after flush")
        if not isinstance(block, Tensor) or block.dim() != 2 or block.shape[0] != self.channels \
                or not block.is_floating_point():
            raise ValueError(f"expected a float block of shape ({self.channels}, n), "
                             f"got {getattr(block, 'shape', type(block))}")
        block = block.detach().to("cpu", torch.float32)
        try:
            _check_finite(block)
        except AudioError as exc:
            raise AudioError(f"{exc} (block starting at sample {self.received})") from None
        self.received += block.shape[-1]
        items, _, mix_out = _plan_channels(block[None], self.model.channels, self.channel_policy)
        self.mix = torch.cat([self.mix, mix_out[0]], dim=-1)
        for i, (item, chain) in enumerate(zip(items, self.chains)):
            self.pending[i] = torch.cat([self.pending[i], chain.process(item.mix)], dim=-1)
        return self._emit(final=False)

    def flush(self) -> dict:
        """Ends the stream: {stem: (C_out, m)}, the remaining stems."""
        if self.finished:
            raise RuntimeError("SeparationStream.flush called twice")
        self.finished = True
        for i, chain in enumerate(self.chains):
            rest = torch.cat([self.pending[i], chain.flush()], dim=-1)
            # As the offline path: exactly the input's length, zeros past the resampled end.
            length = self.received - self.returned_network
            rest = rest[..., :length]
            if rest.shape[-1] < length:
                rest = torch.cat([rest, rest.new_zeros(*rest.shape[:2], length - rest.shape[-1])], dim=-1)
            self.pending[i] = rest
        return self._emit(final=True)

    def _emit(self, final: bool) -> dict:
        count = min(p.shape[-1] for p in self.pending)
        s = self.model.num_sources
        stems = torch.zeros(s, self.out_channels, count)  # (S, C_out, count)
        for i, item in enumerate(self.items):
            y, self.pending[i] = self.pending[i][..., :count], self.pending[i][..., count:]
            if item.mean:
                y = y.mean(dim=1)  # (S, count)
            elif item.channel is not None:
                y = y[:, 0]  # (S, count): a mono model's only channel
            if item.channel is None and item.mean:
                stems[:, 0] = y
            elif item.channel is None:
                stems[:] = y
            else:
                stems[:, item.channel] = y
        self.returned_network += count
        mix, self.mix = self.mix[:, :count], self.mix[:, count:]
        if self.residual is not None:
            others = [k for k in range(s) if k != self.residual]
            stems[self.residual] = mix - stems[others].sum(dim=0)
        if self.post is not None:
            refined = self.post.process(mix, stems)
            if final:
                refined = torch.cat([refined, self.post.flush()], dim=-1)
            stems = refined
        self.returned += stems.shape[-1]
        out = dict(zip(self.model.sources, stems))
        if self.two_stems is not None:  # as wavesep.api.two_stems
            rest = sum(wav for name, wav in out.items() if name != self.two_stems)
            out = {self.two_stems: out[self.two_stems], f"no_{self.two_stems}": rest}
        if self.clip == "clamp":
            for wav in out.values():
                wav.clamp_(-1.0, 1.0)
        return out


__all__ = ["DEFAULT_HOP_SECONDS", "STREAM_CLIP_MODES", "SeparationStream"]
