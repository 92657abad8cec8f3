"""Musical-noise metrics: isolated time-frequency peaks ("spots") and the kurtosis ratio.

Musical noise is the set of short, isolated, tonal peaks that spectral subtraction, Wiener-like
masking or separation leave in a signal. Two measures are provided, both pure numpy/scipy and
both invariant to the signal's gain:

- :func:`spot_rate` / :func:`spot_rate_frames`: isolated-peak count per second, after the idea of
  "Assessment of musical noise using localization of isolated peaks in time-frequency domain"
  (ICASSP 2017). Best applied to the residual ``estimate - reference`` (or to the BSS Eval
  artifact component), so that the music itself is not counted.
- :func:`kurtosis` / :func:`kurtosis_ratio`: raw-moment kurtosis of power-spectrum values before
  and after processing (Uemura, Saruwatari et al.). KR = 1 for pass-through, KR > 1 when
  processing leaves a heavier-tailed, peakier spectrum.

Analysis STFT (shared by both): periodic Hann window of ``n_fft`` samples, hop ``hop``, full
frames only (no boundary padding: frame m covers samples ``[m*hop, m*hop + n_fft)`` and the
samples after the last full frame are not analysed). The defaults are 2048 / 512 at 44.1 kHz,
scaled with the sample rate (see :func:`default_stft`). The DC and Nyquist bins are left out:
their STFT values are real, so for noise their power is not exponentially distributed and the
noise-floor and kurtosis arguments below do not hold for them.

Each channel is peak-normalised before analysis (a no-op for both measures, which are
scale-invariant) so that the fourth powers used by the kurtosis neither overflow nor underflow.

Shape legend: C audio channels, T samples, F frequency bins, M STFT frames, N evaluation frames.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Iterator, List, Optional, Tuple, Union

import numpy as np
import scipy.fft
import scipy.ndimage
import scipy.signal

from wavesep.errors import AudioError

__all__ = [
    "SpotDetails",
    "default_stft",
    "spot_rate",
    "spot_rate_frames",
    "kurtosis",
    "kurtosis_ratio",
]

# Frames per FFT call: bounds the complex working block to about 16 bytes x n_fft/2 x this.
_BLOCK_FRAMES = 512
# Floor of the per-band noise estimate, relative to the mean cell power of the channel. A band
# whose median power is exactly zero (a signal silent more than half of the time) would
# otherwise mark every non-zero cell; -100 dB keeps that case meaningful and, being relative,
# keeps the measure gain-invariant. An all-zero channel gives a zero floor and marks nothing.
_RELATIVE_FLOOR = 1e-10
# 8-connectivity for region labelling: diagonal neighbours belong to the same region.
_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


@dataclasses.dataclass(frozen=True)
class SpotDetails:
    """Result of :func:`spot_rate` with ``return_details=True``.

    Attributes:
        rate: spots per second per channel (``n_spots / (n_channels * duration_seconds)``).
        n_spots: number of spots, summed over channels.
        n_channels: number of channels analysed (C).
        duration_seconds: analysed duration of one channel, ``T / sample_rate``, in seconds.
        energy_share: energy in spot cells divided by the total energy of the analysed
            spectrogram cells, both summed over channels (each channel peak-normalised);
            in [0, 1], 0 for silent input.
    """

    rate: float
    n_spots: int
    n_channels: int
    duration_seconds: float
    energy_share: float


def default_stft(sample_rate: float) -> Tuple[int, int]:
    """Analysis STFT size used when ``n_fft``/``hop`` are not given.

    ``n_fft`` is 2048 at 44.1 kHz scaled with the sample rate and rounded to the nearest power
    of two in log scale (so the window stays near 46 ms: 1024 at 16 and 22.05 kHz, 2048 at 44.1
    and 48 kHz, 4096 at 96 kHz); ``hop = n_fft // 4``.

    Args:
        sample_rate: sampling rate in Hz, > 0.

    Returns:
        ``(n_fft, hop)`` in samples.
    """
    _check_sample_rate(sample_rate)
    n_fft = 2 ** max(4, int(round(math.log2(2048.0 * sample_rate / 44100.0))))
    return n_fft, n_fft // 4


def spot_rate(
    signal: np.ndarray,
    sample_rate: float,
    n_fft: Optional[int] = None,
    hop: Optional[int] = None,
    p_fa: float = 1e-3,
    max_spot_cells: Optional[int] = None,
    return_details: bool = False,
) -> Union[float, SpotDetails]:
    """Isolated time-frequency peaks ("spots") per second, averaged over channels.

    Per channel, with P(f, m) = |X(f, m)|^2 the analysis power spectrogram (module docstring):

    1. noise floor per band: ``sigma2(f) = median_m P(f, m) / ln 2`` (for noise P is exponential
       with mean sigma2, whose median is sigma2 * ln 2), floored at 1e-10 times the mean P of
       the channel so that bands silent most of the time stay finite and gain-invariant;
    2. peak cells: ``P(f, m) > tau * sigma2(f)`` with ``tau = -ln(p_fa)``, so that a noise cell
       is marked with probability ``p_fa``;
    3. regions: connected sets of peak cells, 8-connectivity (``scipy.ndimage.label``);
    4. a spot is a region of at most ``max_spot_cells`` cells.

    ``max_spot_cells`` defaults to ``3 * ceil(n_fft / hop)`` (12 at the default 75 % overlap):
    the footprint that one isolated spectral peak of the processing leaves in the re-analysis,
    i.e. a Hann-windowed tone burst one window long, which stays above the threshold over
    about three bins (its main lobe) and the ``n_fft / hop`` frames its window overlaps.
    Longer tones, transients and broadband bursts form larger regions and are not counted.
    The footprint grows with the peak's level above the floor: measured at 44.1 kHz with the
    defaults, a one-window burst covers about 5-10 cells at 15 dB above the band's noise
    floor, 9-14 at 20 dB, 14-19 at 25 dB and about 30 at 40 dB, so the default counts
    isolated peaks up to about 20 dB above the floor (``energy_share`` shows how much energy
    the counted spots carry).

    Limits: the floor is a median, so it assumes a dense, noise-like background (a residual
    ``estimate - reference`` usually is). When more than half of a band's cells are near
    zero, as after very strong spectral subtraction without a spectral floor, the floor drops
    to the leakage level: peaks then spread over regions larger than a spot, or their
    side lobes break into small islands that count as spots with almost no energy
    (``energy_share`` near 0). The count is not monotonic in processing strength. A steady
    tone only a few dB above the threshold breaks into fragments that count as spots.

    Channels: each channel is analysed on its own (its own noise floor); the rate is the mean
    over channels of ``spots_c / duration``.

    Args:
        signal: float array, shape (C, T) or (T,) (treated as one channel). Any scale.
        sample_rate: sampling rate in Hz.
        n_fft: analysis window length in samples (default: :func:`default_stft`).
        hop: analysis hop in samples, ``1 <= hop <= n_fft`` (default: ``n_fft // 4``).
        p_fa: false-alarm probability per cell for noise, in (0, 1).
        max_spot_cells: largest region, in STFT cells, still counted as a spot (>= 1).
        return_details: return a :class:`SpotDetails` instead of the rate alone.

    Returns:
        Spots per second per channel (float, 1/s; 0.0 for silent input), or a
        :class:`SpotDetails` with the rate, the spot count, the analysed duration and the
        energy share of the spots.

    Raises:
        AudioError: bad shape or values, the signal is shorter than ``n_fft``, or a parameter
            is out of range.
    """
    x = _as_channels(signal)
    n_fft, hop = _resolve_stft(sample_rate, n_fft, hop, x.shape[1])
    tau, max_cells = _spot_parameters(p_fa, max_spot_cells, n_fft, hop)
    n_spots = 0
    spot_energy = 0.0
    total_energy = 0.0
    for channel in x:
        found = _channel_spots(channel, n_fft, hop, tau, max_cells)
        n_spots += found.n_spots
        spot_energy += found.spot_energy
        total_energy += found.total_energy
    duration = x.shape[1] / float(sample_rate)
    rate = n_spots / (x.shape[0] * duration)
    if not return_details:
        return rate
    share = spot_energy / total_energy if total_energy > 0 else 0.0
    return SpotDetails(
        rate=rate,
        n_spots=n_spots,
        n_channels=x.shape[0],
        duration_seconds=duration,
        energy_share=share,
    )


def spot_rate_frames(
    signal: np.ndarray,
    sample_rate: float,
    window_seconds: float = 1.0,
    hop_seconds: float = 1.0,
    n_fft: Optional[int] = None,
    hop: Optional[int] = None,
    p_fa: float = 1e-3,
    max_spot_cells: Optional[int] = None,
) -> np.ndarray:
    """Spots per second in each evaluation frame, with BSS Eval v4's framing.

    The spots are found once over the whole signal exactly as in :func:`spot_rate` (one noise
    floor per channel and band for the whole track, like BSS Eval v4's whole-track distortion
    filters); each spot is then placed at the time of its centroid (mean frame index of its
    cells, at the centre of the analysis window) and counted in every evaluation frame that
    contains that time.

    Evaluation frames, as museval: ``window = int(window_seconds * sample_rate)`` and
    ``hop = int(hop_seconds * sample_rate)`` samples; frame k covers samples
    ``[k * hop, k * hop + window)``; ``N = floor((T - window) / hop) + 1`` (the last partial
    window is dropped), or one frame over the whole signal when ``T <= window``. With
    ``window_seconds == hop_seconds`` and T a whole number of windows, the mean of the result
    equals :func:`spot_rate`.

    Args:
        signal: float array, shape (C, T) or (T,).
        sample_rate: sampling rate in Hz.
        window_seconds: evaluation frame length in seconds.
        hop_seconds: evaluation frame hop in seconds.
        n_fft, hop, p_fa, max_spot_cells: as in :func:`spot_rate` (``hop`` is the STFT hop in
            samples, not the evaluation hop).

    Returns:
        float64 array of shape (N,): spots per second per channel in each frame (count of the
        frame divided by the number of channels and by the frame duration in seconds).

    Raises:
        AudioError: as :func:`spot_rate`, or frames shorter than one sample.
    """
    x = _as_channels(signal)
    n_fft, hop = _resolve_stft(sample_rate, n_fft, hop, x.shape[1])
    tau, max_cells = _spot_parameters(p_fa, max_spot_cells, n_fft, hop)
    length = x.shape[1]
    window_samples = int(window_seconds * sample_rate)
    hop_samples = int(hop_seconds * sample_rate)
    if window_samples < 1 or hop_samples < 1:
        raise AudioError(
            f"window_seconds={window_seconds}, hop_seconds={hop_seconds} at "
            f"sample_rate={sample_rate} Hz give window={window_samples}, hop={hop_samples} "
            "samples; both must be at least one sample"
        )
    if length <= window_samples:
        starts = np.zeros(1, dtype=np.int64)
        stops = np.full(1, length, dtype=np.int64)
    else:
        num_frames = (length - window_samples) // hop_samples + 1
        starts = np.arange(num_frames, dtype=np.int64) * hop_samples
        stops = starts + window_samples
    counts = np.zeros(len(starts), dtype=np.float64)
    for channel in x:
        centres = _channel_spots(channel, n_fft, hop, tau, max_cells).centre_samples
        # spots per frame = spots with centre < stop minus spots with centre < start
        sorted_centres = np.sort(centres)
        counts += np.searchsorted(sorted_centres, stops, side="left") - np.searchsorted(
            sorted_centres, starts, side="left"
        )
    frame_seconds = (stops - starts) / float(sample_rate)
    return counts / (x.shape[0] * frame_seconds)


def kurtosis(
    signal: np.ndarray,
    sample_rate: float,
    n_fft: Optional[int] = None,
    hop: Optional[int] = None,
    fmin: Optional[float] = None,
    fmax: Optional[float] = None,
) -> float:
    """Raw-moment kurtosis of the power-spectrum values of a signal, averaged over channels.

    ``kurt = E[P^4] / (E[P^2])^2`` over the cells P = |X(f, m)|^2 of the analysis STFT (module
    docstring) in the band ``fmin <= f <= fmax``; E is the mean over all those cells (raw
    moments, pooled over bands and frames). For white Gaussian noise P is exponentially
    distributed with the same mean in every band; the raw moments of an exponential variable
    are E[P^n] = n! E[P]^n, so kurt = 4! / (2!)^2 = 6. Coloured noise pools bands of different
    levels (a scale mixture of exponentials) and gives more than 6; sparser, peakier spectra
    (musical noise) give larger values too, which is why :func:`kurtosis_ratio` compares a
    signal with itself before processing rather than with 6.

    Channels: computed per channel; the result is the mean over channels that are not silent.

    Args:
        signal: float array, shape (C, T) or (T,).
        sample_rate: sampling rate in Hz.
        n_fft: analysis window length in samples (default: :func:`default_stft`).
        hop: analysis hop in samples (default: ``n_fft // 4``).
        fmin: lowest frequency analysed, in Hz (default: the first bin above DC).
        fmax: highest frequency analysed, in Hz (default: the last bin below Nyquist).

    Returns:
        The kurtosis (float, dimensionless); NaN when every channel is silent (undefined).

    Raises:
        AudioError: bad shape or values, signal shorter than ``n_fft``, or an empty band.
    """
    x = _as_channels(signal)
    n_fft, hop = _resolve_stft(sample_rate, n_fft, hop, x.shape[1])
    bins = _band_bins(sample_rate, n_fft, fmin, fmax)
    values: List[float] = []
    for channel in x:
        sum2 = 0.0
        sum4 = 0.0
        count = 0
        for power in _power_blocks(_peak_normalised(channel), n_fft, hop, bins):
            squared = power * power
            sum2 += float(squared.sum())
            sum4 += float((squared * squared).sum())
            count += power.size
        if sum2 > 0.0:
            values.append(count * sum4 / (sum2 * sum2))
    return float(np.mean(values)) if values else float("nan")


def kurtosis_ratio(
    before: np.ndarray,
    after: np.ndarray,
    sample_rate: float,
    n_fft: Optional[int] = None,
    hop: Optional[int] = None,
    fmin: Optional[float] = None,
    fmax: Optional[float] = None,
    log: bool = False,
) -> float:
    """Kurtosis ratio KR = kurt(after) / kurt(before), or LKR = ln KR with ``log=True``.

    Both kurtoses are computed by :func:`kurtosis` with the same analysis settings and band.
    KR = 1 for pass-through and for any gain change; KR > 1 means processing made the power
    spectrum heavier-tailed (more musical noise), e.g. spectral subtraction of noise.

    Args:
        before: signal before processing, float array (C, T) or (T,).
        after: signal after processing, same shape as ``before``.
        sample_rate: sampling rate of both, in Hz.
        n_fft, hop, fmin, fmax: as in :func:`kurtosis`.
        log: return ln KR instead of KR.

    Returns:
        KR (float, dimensionless) or ln KR; NaN if either signal is silent.

    Raises:
        AudioError: the shapes differ, or as :func:`kurtosis`.
    """
    before_arr = _as_channels(before, name="before")
    after_arr = _as_channels(after, name="after")
    if before_arr.shape != after_arr.shape:
        raise AudioError(
            f"'before' has shape {np.shape(before)} but 'after' has shape {np.shape(after)}; "
            "the kurtosis ratio compares the same region, so trim both to the same "
            "(channels, samples)"
        )
    k_before = kurtosis(before_arr, sample_rate, n_fft, hop, fmin, fmax)
    k_after = kurtosis(after_arr, sample_rate, n_fft, hop, fmin, fmax)
    if math.isnan(k_before) or math.isnan(k_after):
        return float("nan")
    ratio = k_after / k_before
    return math.log(ratio) if log else ratio


@dataclasses.dataclass(frozen=True)
class _ChannelSpots:
    n_spots: int
    spot_energy: float
    total_energy: float
    centre_samples: np.ndarray  # (n_spots,) float64, time of each spot's centroid


def _channel_spots(
    x: np.ndarray, n_fft: int, hop: int, tau: float, max_cells: int
) -> _ChannelSpots:
    x = _peak_normalised(x)
    bins = slice(1, n_fft // 2 + (n_fft % 2))  # drop DC, and Nyquist when n_fft is even
    # (F, M) float32: a quarter of the complex128 size, ample precision for a threshold test
    power = np.concatenate(
        [block.astype(np.float32) for block in _power_blocks(x, n_fft, hop, bins)], axis=1
    )
    total_energy = float(power.sum(dtype=np.float64))
    floor = np.median(power, axis=1) / math.log(2.0)
    floor = np.maximum(floor, _RELATIVE_FLOOR * total_energy / power.size)
    peaks = power > (tau * floor)[:, None]
    labels, num_regions = scipy.ndimage.label(peaks, structure=_EIGHT_CONNECTED)
    if num_regions == 0:
        return _ChannelSpots(0, 0.0, total_energy, np.zeros(0))
    sizes = np.bincount(labels.ravel(), minlength=num_regions + 1)
    is_spot = sizes <= max_cells
    is_spot[0] = False  # label 0 is the background
    rows, cols = np.nonzero(is_spot[labels])
    cell_labels = labels[rows, cols]
    spot_energy = float(power[rows, cols].sum(dtype=np.float64))
    spot_ids = np.flatnonzero(is_spot)
    frame_sums = np.bincount(
        cell_labels, weights=cols.astype(np.float64), minlength=num_regions + 1
    )
    mean_frame = frame_sums[spot_ids] / sizes[spot_ids]
    centres = mean_frame * hop + n_fft / 2.0
    return _ChannelSpots(len(spot_ids), spot_energy, total_energy, centres)


def _power_blocks(x: np.ndarray, n_fft: int, hop: int, bins: slice) -> Iterator[np.ndarray]:
    """Yield the power spectrogram |X|^2 of one channel (T,) as float64 blocks (F', m)."""
    window = scipy.signal.get_window("hann", n_fft)  # periodic Hann
    frames = np.lib.stride_tricks.sliding_window_view(x, n_fft)[::hop]  # (M, n_fft), a view
    for start in range(0, frames.shape[0], _BLOCK_FRAMES):
        spectrum = scipy.fft.rfft(frames[start : start + _BLOCK_FRAMES] * window, axis=-1)
        block = spectrum[:, bins]  # (m, F')
        yield (block.real * block.real + block.imag * block.imag).T


def _band_bins(
    sample_rate: float, n_fft: int, fmin: Optional[float], fmax: Optional[float]
) -> slice:
    freqs = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    first = 1 if fmin is None else int(np.searchsorted(freqs, fmin, side="left"))
    last_bin = len(freqs) - 1 - (1 - n_fft % 2)  # the last bin below Nyquist
    stop = last_bin + 1 if fmax is None else int(np.searchsorted(freqs, fmax, side="right"))
    if stop <= first:
        raise AudioError(
            f"the band fmin={fmin} Hz .. fmax={fmax} Hz contains no STFT bin (n_fft={n_fft}, "
            f"bin spacing {sample_rate / n_fft:.3g} Hz at {sample_rate} Hz); widen the band"
        )
    return slice(first, stop)


def _as_channels(signal: np.ndarray, name: str = "signal") -> np.ndarray:
    """Validate (C, T) or (T,) samples; return them as (C, T) without copying."""
    arr = np.asarray(signal)
    if arr.dtype.kind not in "fiu" or arr.ndim not in (1, 2) or arr.size == 0:
        raise AudioError(
            f"{name} must be a non-empty real array of shape (channels, samples) or "
            f"(samples,); got shape {arr.shape} and dtype {arr.dtype}"
        )
    if not np.isfinite(arr).all():
        raise AudioError(f"{name} contains NaN or infinite samples; fix the signal first")
    return np.atleast_2d(arr)


def _peak_normalised(channel: np.ndarray) -> np.ndarray:
    """One channel (T,) as float64 divided by its peak (all zeros stay zeros)."""
    x = channel.astype(np.float64)
    peak = np.abs(x).max()
    # a no-op for these scale-invariant measures, it keeps P^4 away from overflow/underflow
    if peak > 0:
        x /= peak
    return x


def _check_sample_rate(sample_rate: float) -> None:
    if not (isinstance(sample_rate, (int, float, np.integer, np.floating)) and sample_rate > 0):
        raise AudioError(f"sample_rate must be a positive number of Hz; got {sample_rate!r}")


def _resolve_stft(
    sample_rate: float, n_fft: Optional[int], hop: Optional[int], length: int
) -> Tuple[int, int]:
    default_n_fft, _ = default_stft(sample_rate)
    n_fft = default_n_fft if n_fft is None else int(n_fft)
    hop = n_fft // 4 if hop is None else int(hop)
    if n_fft < 4 or not 1 <= hop <= n_fft:
        raise AudioError(f"need n_fft >= 4 and 1 <= hop <= n_fft; got n_fft={n_fft}, hop={hop}")
    if length < n_fft:
        raise AudioError(
            f"the signal has {length} samples, fewer than one analysis window (n_fft={n_fft}); "
            "pass a longer signal or a smaller n_fft (a (samples, channels) array must be "
            "transposed to (channels, samples))"
        )
    return n_fft, hop


def _spot_parameters(
    p_fa: float, max_spot_cells: Optional[int], n_fft: int, hop: int
) -> Tuple[float, int]:
    if not 0.0 < p_fa < 1.0:
        raise AudioError(f"p_fa is a probability in (0, 1); got {p_fa}")
    if max_spot_cells is None:
        max_spot_cells = 3 * -(-n_fft // hop)
    if int(max_spot_cells) < 1:
        raise AudioError(f"max_spot_cells must be at least 1; got {max_spot_cells}")
    return -math.log(p_fa), int(max_spot_cells)
