"""Full-track inference: exact tiling, batching, devices, resampling and channel adaptation.

Shape legend: B batch, S sources, C audio channels, T time (samples).

This is the only place that chunks long signals. :func:`separate` runs a
:class:`~wavesep.model.WaveUNet` over a mixture of any length and returns the estimates at the
mixture's own sample rate, channel count and length:

* **Exact.** The track is zero-padded by the model's context and cut into output windows whose
  hop is a multiple of ``model.stride`` (2**levels). Wave-U-Net decimates without a low-pass
  filter, so it is shift-equivariant only for such shifts: with this hop every window sits on
  the same decimation phase and the result equals one forward pass over the whole padded track
  (up to float rounding). The reference implementation's hop of 16389 samples is not a multiple
  of 4096, so its windows do not. For "same"-convolution models (no built-in context) each
  window also reads a margin of the model's receptive field on both sides and keeps only its
  interior, which again equals the whole-signal pass.
* **Bounded memory.** Only ``batch_size`` windows of ``segment_seconds`` (plus context) are in
  flight. Resampling to and from the model's rate goes through libsoxr streams
  (:class:`wavesep.audio.ResampleStream`, whose output does not depend on the block sizes) on
  rolling buffers, the post-filter runs block by block
  (:class:`wavesep.postfilter.RatioMaskStream`) and the clip policy in place, so besides the
  input and the output arrays the memory does not grow with the track's length.
  :mod:`wavesep.streaming` runs the same stages on a stream.
* **Fast.** Far fewer, larger windows than the reference (which reads 9x more input than it
  produces); windows are batched; on CUDA the host-to-device copies come from pinned buffers on
  their own stream and overlap with the computation, and float16 / bfloat16 autocast is
  available.

The tile plan and the rolling resampling buffers live in :mod:`wavesep.tiling`; devices, precision
and the batch runners in :mod:`wavesep.devices`. Their public names are importable from here too.

The model is never modified: it is used in eval mode under ``torch.inference_mode`` and its
training flag is restored; if it lives on another device a copy is moved instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import torch
from torch import Tensor

from . import audio
from .devices import (  # noqa: F401 (_autocast, _cpu_flags: used via wavesep.apply)
    PRECISIONS,
    _auto_cuda_batch,
    _autocast,
    _cpu_flags,
    _CpuRunner,
    _CudaRunner,
    _placed,
    native_bfloat16,
    resolve_device,
    resolve_precision,
)
from .errors import AudioError, ModelError
from .model import WaveUNet
from .postfilter import POSTFILTERS, make_stream
from .tiling import (  # noqa: F401
    DEFAULT_SEGMENT_SECONDS,
    TilePlan,
    _InputStream,
    _OutputStream,
    plan_tiles,
    receptive_margin,
)

CLIP_MODES = ("none", "clamp", "rescale")
# "split" (each input channel separated on its own) is added to the policies of wavesep.audio.
CHANNEL_POLICIES = tuple(audio.CHANNEL_POLICIES) + ("split",)

# Samples per step of the element-wise passes over whole tracks (finite check, clipping): keeps
# their temporaries small whatever the length.
_PASS_BLOCK = 1 << 18

ProgressFn = Callable[[float], None]


# ---------------------------------------------------------------------------------- channels


@dataclass
class _Item:
    """One model input: ``mix`` (C_m, T) at the input rate; its estimates go to track ``track``,
    all output channels (``channel`` None) or one; ``mean`` averages the model's channels."""

    track: int
    mix: Tensor
    channel: Optional[int]
    mean: bool


def _plan_channels(mix: Tensor, model_channels: int, policy: str) -> tuple:
    """Maps a (B, C, T) mixture onto model inputs.

    Returns (items, output channel count, mixture as seen in the output channels (B, C_out, T)).
    Same count: as is. Stereo into a mono model: each channel separated on its own. Mono into a
    multi-channel model: duplicated, and the estimates averaged back to mono. Anything else
    follows ``policy``: "error", "downmix" (mean of all channels, duplicated), "first" (the
    first channels) or "split" (every channel separated on its own, duplicated to the model's
    channels, estimates averaged back: the output keeps all the input's channels).
    """
    batch, have, _ = mix.shape
    want = model_channels
    if have == want:
        return [_Item(b, mix[b], None, False) for b in range(batch)], have, mix
    if have == 1:
        items = [_Item(b, mix[b].expand(want, -1), None, True) for b in range(batch)]
        return items, 1, mix
    if have == 2 and want == 1:
        policy = "split"
    if policy == "split":
        items = [
            _Item(b, mix[b, c : c + 1].expand(want, -1), c, want > 1)
            for b in range(batch)
            for c in range(have)
        ]
        return items, have, mix
    if policy == "first" and have >= want:
        return [_Item(b, mix[b, :want], None, False) for b in range(batch)], want, mix[:, :want]
    if policy == "downmix":
        down = mix.mean(dim=1, keepdim=True).expand(-1, want, -1)  # (B, C_m, T)
        return [_Item(b, down[b], None, False) for b in range(batch)], want, down
    raise AudioError(
        f"the mixture has {have} channels and the model takes {want}: choose a channel policy "
        "(--channels on the command line, channel_policy= in Python): "
        "'downmix' (mean of all channels), 'first' (the first channels) or 'split' (each channel "
        "separated on its own, keeping all channels)"
    )




# ---------------------------------------------------------------------------------- clipping


def _blocks(length: int, size: int = _PASS_BLOCK):
    for t0 in range(0, length, size):
        yield slice(t0, min(length, t0 + size))


def _peak(x: Tensor) -> float:
    """max |x| over the last axis in blocks (no full-size temporary)."""
    peak = 0.0
    for sl in _blocks(x.shape[-1]):
        if x[..., sl].numel():
            peak = max(peak, float(x[..., sl].abs().max()))
    return peak


def clip_stems(stems: Tensor, mode: str = "none") -> Tensor:
    """Applies a clipping policy to the estimates of one or more tracks, in place.

    Args:
        stems: (S, C, T) or (B, S, C, T) estimates.
        mode: "none" (unchanged), "clamp" (each sample to [-1, 1]) or "rescale" (all stems of a
            track scaled by one common factor so that its peak |sample| is at most 1; the stems
            then still add up to the equally scaled mixture; tracks within the limit are
            unchanged).

    Returns:
        ``stems`` itself, modified in place.
    """
    if mode not in CLIP_MODES:
        raise ValueError(f"clip mode must be one of {CLIP_MODES}, got {mode!r}")
    if mode == "clamp":
        for sl in _blocks(stems.shape[-1]):
            stems[..., sl].clamp_(-1.0, 1.0)
    elif mode == "rescale":
        tracks = stems.unsqueeze(0) if stems.dim() == 3 else stems  # (B, S, C, T)
        for track in tracks:
            peak = _peak(track)
            if peak > 1.0:
                track.mul_(1.0 / peak)
    return stems


def clip_tensors(stems: Sequence[Tensor], mode: str = "none") -> None:
    """:func:`clip_stems` for the stems of one track given as separate (C, T) tensors, in place
    ("rescale": one common factor from the peak over all of them)."""
    if mode not in CLIP_MODES:
        raise ValueError(f"clip mode must be one of {CLIP_MODES}, got {mode!r}")
    if mode == "clamp":
        for wav in stems:
            clip_stems(wav, "clamp")
    elif mode == "rescale":
        peak = max((_peak(wav) for wav in stems), default=0.0)
        if peak > 1.0:
            for wav in stems:
                wav.mul_(1.0 / peak)


def _check_finite(mix: Tensor) -> None:
    for sl in _blocks(mix.shape[-1]):
        block = mix[..., sl]
        if not bool(torch.isfinite(block).all()):
            bad = ~torch.isfinite(block)
            first = sl.start + int(bad.reshape(-1, bad.shape[-1]).any(dim=0).nonzero()[0, 0])
            raise AudioError(
                f"the mixture contains NaN or infinite samples (first at sample {first}); "
                "fix or re-export the audio"
            )


def _check_estimates(out: Tensor) -> None:
    for sl in _blocks(out.shape[-1]):
        if not bool(torch.isfinite(out[..., sl]).all()):
            raise ModelError(
                "the model produced NaN or infinite estimates: its weights are broken (e.g. a "
                "diverged training) or, with --precision float16, the network overflowed"
            )


# ---------------------------------------------------------------------------------- separate


def separate(
    model: WaveUNet,
    mix: Tensor,
    sample_rate: int,
    *,
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS,
    batch_size: Optional[int] = None,
    device="auto",
    precision: Optional[str] = None,
    clip: str = "none",
    progress: Optional[ProgressFn] = None,
    channel_policy: str = "error",
    residual_source: Optional[str] = None,
    postfilter: str = "none",
) -> Tensor:
    """Separates a whole mixture of any length.

    Args:
        model: a :class:`~wavesep.model.WaveUNet` (not modified; see the module docstring).
        mix: mixture (C, T) or (B, C, T), float, at ``sample_rate``; any length, T >= 0.
        sample_rate: Hz of ``mix``. When it differs from ``model.sample_rate`` the mixture is
            resampled to the model's rate and the estimates back (:func:`wavesep.audio.resample`).
        segment_seconds: output window length in seconds at the model's rate (the input window
            adds ``sum(model.context)`` samples). Bounds memory; larger windows waste less work
            on context. The windows are balanced over the track, so shorter tracks use smaller
            ones.
        batch_size: windows per forward pass. None: 1 on the CPU, on CUDA the largest batch that
            fits in 60% of the free GPU memory (measured with one window, at most 64).
        device: "cpu", "cuda", "cuda:N" or "auto" (CUDA when available).
        precision: None or "float32" (full precision), "float16" or "bfloat16" (autocast), or
            "auto": bfloat16 where the device computes it natively (:func:`resolve_precision`),
            float32 elsewhere. Only float32 is exact (the tiled result equals one whole pass).
        clip: "none", "clamp" or "rescale", applied to the final estimates (:func:`clip_stems`).
            The model itself never clips.
        progress: called with the fraction of windows done (0 < f <= 1) after every batch.
        channel_policy: for channel counts other than the model's that are not a mono/stereo
            conversion: "error" (default), "downmix" (the mean of all channels, duplicated to
            the model's channels), "first" (the model's number of first channels) or "split"
            (every channel separated on its own, duplicated to the model's channels and the
            estimates averaged back: all the input's channels are kept). Whatever the policy, a
            mono input to a stereo model is duplicated and the estimates averaged back to mono,
            and a stereo input to a mono model is separated channel by channel.
        residual_source: with a "difference"-output model and resampling, the source that
            receives the mixture minus the others at the input rate, and so everything above the
            model's Nyquist frequency (cymbals, air, sibilance). None: "accompaniment" if the model
            has it, else "other", else the model's last source.
        postfilter: "none", "ratio-mask" or "ratio-mask-fullband" (:mod:`wavesep.postfilter`;
            the latter also gives the band above the model's Nyquist frequency to the sources
            when ``sample_rate`` is above the model's), applied to each track's estimates at
            ``sample_rate`` before ``clip``, block by block (the same result as the whole-track
            filter).

    Returns:
        Estimates (S, C_out, T) or (B, S, C_out, T), float32 on the CPU, sources in
        ``model.sources`` order, at ``sample_rate`` and of exactly the input's length. C_out is
        the input's channel count (the model's with the "first" and "downmix" policies). At the
        model's rate the result equals one forward pass over the whole zero-padded mixture up to
        float rounding. When resampling, the estimates of a "difference"-output model are made
        to add up exactly to the mixture: ``residual_source`` is the mixture minus the others at
        the input rate (so it also holds what lies above the model's Nyquist frequency).

    Raises:
        AudioError: NaN/Inf samples, or a channel layout the policy refuses.
        ModelError: the model's estimates hold NaN/Inf samples.
        ValueError: bad arguments.
    """
    if not isinstance(mix, Tensor) or mix.dim() not in (2, 3) or not mix.is_floating_point():
        raise ValueError(f"mix must be a float tensor (C, T) or (B, C, T), got {getattr(mix, 'shape', type(mix))}")
    sample_rate = int(sample_rate)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive number of Hz, got {sample_rate}")
    if clip not in CLIP_MODES:
        raise ValueError(f"clip must be one of {CLIP_MODES}, got {clip!r}")
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if channel_policy not in CHANNEL_POLICIES:
        raise ValueError(f"channel_policy must be one of {CHANNEL_POLICIES}, got {channel_policy!r}")
    if batch_size is not None and int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1 or None, got {batch_size}")
    if postfilter not in POSTFILTERS:
        raise ValueError(f"postfilter must be one of {POSTFILTERS}, got {postfilter!r}")
    if not segment_seconds or not segment_seconds > 0 or not math.isfinite(segment_seconds):
        raise ValueError(f"segment_seconds must be finite and > 0, got {segment_seconds}")
    dev = resolve_device(device)
    precision = resolve_precision(precision, dev)
    residual = _residual_index(model, residual_source)

    single = mix.dim() == 2
    batched = (mix.unsqueeze(0) if single else mix).detach().to("cpu", torch.float32)  # (B, C, T)
    _check_finite(batched)
    items, out_channels, mix_out = _plan_channels(batched, model.channels, channel_policy)
    batch, _, length = batched.shape
    out = torch.zeros(batch, model.num_sources, out_channels, length)  # (B, S, C_out, T)
    if length > 0:
        _run(model, items, out, sample_rate, dev, segment_seconds, batch_size, precision, progress)
        _check_estimates(out)  # before the post-filter, whose mask would hide NaN estimates
        if sample_rate != model.sample_rate and model.config.output == "difference":
            others = [s for s in range(model.num_sources) if s != residual]
            for b in range(batch):
                for sl in _blocks(length):
                    out[b, residual, :, sl] = mix_out[b, :, sl] - out[b, others, :, sl].sum(dim=0)
        if postfilter != "none":
            for b in range(batch):
                stream = make_stream(postfilter, model.num_sources, out_channels, sample_rate,
                                     model.sample_rate, sums_to_mix=model.config.output == "difference")
                _postfilter_in_place(mix_out[b], out[b], stream)
        clip_stems(out, clip)
    elif progress is not None:
        progress(1.0)
    return out[0] if single else out


def _postfilter_in_place(mix: Tensor, stems: Tensor, stream) -> None:
    """Post-filters ``stems`` (S, C, T) of ``mix`` (C, T) in place, block by block in bounded
    memory, through ``stream``, a fresh :class:`wavesep.postfilter.RatioMaskStream` (made by
    :func:`wavesep.postfilter.make_stream`): the same result as the whole-track filter, and the
    same as a stream's."""
    done = 0
    for sl in _blocks(stems.shape[-1]):
        refined = stream.process(mix[:, sl], stems[..., sl])  # (S, C, m): samples the stream holds copies of
        stems[..., done : done + refined.shape[-1]] = refined
        done += refined.shape[-1]
    refined = stream.flush()
    stems[..., done : done + refined.shape[-1]] = refined


def _residual_index(model: WaveUNet, name: Optional[str]) -> int:
    """Index of the source that takes the resampling residual (see :func:`separate`)."""
    sources = list(model.sources)
    if name is None:
        for candidate in ("accompaniment", "other"):
            if candidate in sources:
                return sources.index(candidate)
        return len(sources) - 1
    if name not in sources:
        raise ValueError(f"residual_source {name!r} is not one of the model's sources {sources}")
    return sources.index(name)


def _run(model, items, out, sample_rate, dev, segment_seconds, batch_size, precision, progress):
    length = out.shape[-1]
    rate = model.sample_rate
    resampling = sample_rate != rate
    model_length = audio.resampled_length(length, sample_rate, rate) if resampling else length
    plan = plan_tiles(model, model_length, segment_seconds)
    total = len(items) * plan.num_windows
    auto_batch = batch_size is None

    with _placed(model, dev) as net:
        dtype = next(net.parameters()).dtype
        if batch_size is None:
            batch_size = 1
            if dev.type == "cuda":
                batch_size = _auto_cuda_batch(net, model.channels, plan.input_length, dtype, precision, dev, total)
        while True:
            try:
                _run_windows(net, items, out, plan, model_length, sample_rate, rate, dev,
                             min(int(batch_size), total), dtype, precision, progress)
                return
            except torch.OutOfMemoryError:
                # Only an automatically sized batch is shrunk; an explicit one is the user's call.
                if not auto_batch or batch_size <= 1:
                    raise
                batch_size = max(1, batch_size // 2)
                torch.cuda.empty_cache()
                out.zero_()


def _run_windows(net, items, out, plan, model_length, sample_rate, model_rate, dev, batch_size, dtype,
                 precision, progress):
    length = out.shape[-1]

    def writer(item: _Item):
        def write(stems: Tensor, t0: int) -> None:  # stems (S, C_m, L)
            span = slice(t0, t0 + stems.shape[-1])
            if item.mean:
                stems = stems.mean(dim=1)  # (S, L)
            elif item.channel is not None:
                stems = stems[:, 0]  # (S, L): a mono model's only channel
            if item.channel is None and item.mean:
                out[item.track, :, 0, span] = stems
            elif item.channel is None:
                out[item.track, :, :, span] = stems
            else:
                out[item.track, :, item.channel, span] = stems

        return write

    inputs = [_InputStream(item.mix, sample_rate, model_rate, model_length) for item in items]
    outputs = [_OutputStream(writer(item), model_rate, sample_rate, model_length, length,
                             net.num_sources, net.channels) for item in items]
    windows = [(i, w) for i in range(len(items)) for w in range(plan.num_windows)]
    if dev.type == "cuda":
        runner = _CudaRunner(net, net.channels, plan.input_length, plan.output_length, net.num_sources,
                             batch_size, dtype, precision, dev)
    else:
        runner = _CpuRunner(net, net.channels, plan.input_length, batch_size, dtype, precision)

    def fill_for(i: int, w: int):
        def fill(dst: Tensor) -> None:
            inputs[i].fill(dst, plan.starts[w])
            if w == plan.num_windows - 1:
                inputs[i].close()

        return fill

    done = 0

    def scatter(batch, handle) -> None:
        nonlocal done
        y = runner.finish(handle)  # (B, S, C_m, W_out)
        for j, (i, w) in enumerate(batch):
            k0, k1 = plan.keeps[w]
            outputs[i].push(y[j, :, :, k0:k1], plan.starts[w] + plan.lead + k0)
        done += len(batch)
        if progress is not None:
            progress(done / len(windows))

    pending = None
    for b0 in range(0, len(windows), batch_size):
        batch = windows[b0 : b0 + batch_size]
        handle = runner.submit([fill_for(i, w) for i, w in batch])
        if pending is not None:
            scatter(*pending)
        pending = (batch, handle)
    if pending is not None:
        scatter(*pending)


__all__ = [
    "CHANNEL_POLICIES",
    "CLIP_MODES",
    "DEFAULT_SEGMENT_SECONDS",
    "PRECISIONS",
    "TilePlan",
    "native_bfloat16",
    "resolve_precision",
    "clip_stems",
    "clip_tensors",
    "plan_tiles",
    "receptive_margin",
    "resolve_device",
    "separate",
]
