"""Oracle separation by ideal ratio masks (SiSEC's IRM1 / IRM2 upper-bound baselines).

The oracle knows the true stems: it masks the STFT of their mixture (the sum of the stems) with

    M_j(f, m) = |S_j(f, m)|^p / sum_k |S_k(f, m)|^p

and inverts the STFT. ``p = 2`` is the power-ratio mask (SiSEC 2018's "IRM2", MUSDB18 test
medians in REFERENCE.md section 3), ``p = 1`` the magnitude-ratio mask ("IRM1"). The masks of a
cell sum to one, so the estimates sum to the mixture; a cell where every stem is exactly zero
(hence the mixture too) is shared equally.

STFT: periodic Hann window of ``n_fft`` samples, hop ``hop``, weighted overlap-add inverse with
the same window, normalised by the summed squared windows, so an all-ones mask returns the
input to float precision. The signal is zero-padded by ``n_fft - hop`` samples in front and
``n_fft`` behind, so every output sample lies under the full set of overlapping frames, and the
output is cropped back to exactly T samples.

Memory: channels are processed one at a time and frames in blocks, so besides the output the
working memory is about two copies of one channel of the stems (padded input, overlap-add
buffer) plus a bounded block of spectra; no full spectrogram is ever held. A 240 s, 4-source,
stereo, 44.1 kHz float32 track (339 MB) peaks near 470 MB of working memory on top of its
339 MB output.

Shape legend: S sources, T samples, C audio channels, F frequency bins, M STFT frames.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
import scipy.signal

from wavesep.errors import AudioError

__all__ = ["ideal_ratio_mask", "ratio_masks"]

# Frames per FFT call: bounds the spectra of a block to about S x this x (n_fft/2) x 16 bytes.
_BLOCK_FRAMES = 256


def ideal_ratio_mask(
    sources: np.ndarray,
    n_fft: int = 4096,
    hop: int = 1024,
    power: float = 2.0,
) -> np.ndarray:
    """Oracle estimates of each source by ideal ratio masking of their mixture.

    Args:
        sources: the true stems, float array of shape (S, T, C) (museval's layout), any scale;
            their sum is the mixture that gets masked.
        n_fft: STFT window length in samples (SiSEC's oracles: 4096 at 44.1 kHz).
        hop: STFT hop in samples, ``1 <= hop <= n_fft // 2`` (Hann windows need at least 50 %
            overlap for the overlap-add normalisation to stay away from zero).
        power: mask exponent p > 0 (2: power-ratio mask IRM2; 1: magnitude-ratio mask IRM1).

    Returns:
        Estimates of shape (S, T, C), same dtype as ``sources`` (float32 stays float32),
        summing to the mixture ``sources.sum(0)`` up to float rounding.

    Raises:
        AudioError: not a non-empty (S, T, C) float array, non-finite samples, or bad
            ``n_fft``/``hop``/``power``.
    """
    stems = np.asarray(sources)
    if stems.ndim != 3 or stems.size == 0 or stems.dtype.kind != "f":
        raise AudioError(
            f"sources must be a non-empty float array of shape (sources, samples, channels); "
            f"got shape {stems.shape} and dtype {stems.dtype} (add a trailing axis for mono, "
            "convert integer PCM to float first)"
        )
    if not np.isfinite(stems).all():
        raise AudioError("sources contain NaN or infinite samples; fix the stems first")
    n_fft, hop = int(n_fft), int(hop)
    if n_fft < 4 or not 1 <= hop <= n_fft // 2:
        raise AudioError(
            f"need n_fft >= 4 and 1 <= hop <= n_fft // 2; got n_fft={n_fft}, hop={hop}"
        )
    if not power > 0:
        raise AudioError(f"power must be positive (2 for IRM2, 1 for IRM1); got {power}")

    num_sources, length, num_channels = stems.shape
    window = scipy.signal.get_window("hann", n_fft).astype(stems.dtype)  # periodic Hann
    front = n_fft - hop
    padded_length = front + length + n_fft
    num_frames = (padded_length - n_fft) // hop + 1
    starts = np.arange(num_frames) * hop
    # summed squared synthesis x analysis windows: the overlap-add normaliser, (T,)
    window_sum = np.zeros(padded_length, dtype=np.float64)
    squared_window = window.astype(np.float64) ** 2
    for start in starts:
        window_sum[start : start + n_fft] += squared_window
    normaliser = window_sum[front : front + length].astype(stems.dtype)
    del window_sum

    estimates = np.empty_like(stems)
    padded = np.zeros((num_sources, padded_length), dtype=stems.dtype)
    overlap_add = np.zeros((num_sources, padded_length), dtype=stems.dtype)
    for channel in range(num_channels):
        padded[:, front : front + length] = stems[:, :, channel]
        overlap_add.fill(0.0)
        frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[:, ::hop]
        for first in range(0, num_frames, _BLOCK_FRAMES):
            block = frames[:, first : first + _BLOCK_FRAMES]  # (S, m, n_fft), a view
            spectra = scipy.fft.rfft(block * window, axis=-1)  # (S, m, F)
            mixture = spectra.sum(axis=0)  # (m, F)
            masked = ratio_masks(spectra, power) * mixture  # (S, m, F)
            frames_out = scipy.fft.irfft(masked, n=n_fft, axis=-1) * window  # (S, m, n_fft)
            for offset, start in enumerate(starts[first : first + _BLOCK_FRAMES]):
                overlap_add[:, start : start + n_fft] += frames_out[:, offset]
        # written straight into the strided output: no (S, T) temporary
        np.divide(overlap_add[:, front : front + length], normaliser, out=estimates[:, :, channel])
    return estimates


def ratio_masks(spectra: np.ndarray, power: float = 2.0) -> np.ndarray:
    """Ratio masks ``|X_j|^p / sum_k |X_k|^p`` of S spectra, along the first axis.

    Computed as ``r_j^p / sum_k r_k^p`` with ``r_j = |X_j| / max_k |X_k|``, which is the same
    ratio but cannot overflow or underflow for any signal scale or exponent. Where every
    ``|X_k|`` is zero each mask is ``1 / S``.

    Args:
        spectra: complex or real array of shape (S, ...), e.g. (S, F, M) STFTs of the sources.
        power: exponent p > 0.

    Returns:
        float array of shape (S, ...) with values in [0, 1] summing to 1 over the first axis;
        float32 for complex64/float32 input, float64 otherwise.
    """
    magnitude = np.abs(spectra)
    if magnitude.dtype not in (np.float32, np.float64):
        magnitude = magnitude.astype(np.float64)
    largest = magnitude.max(axis=0, keepdims=True)
    relative = np.divide(magnitude, largest, out=np.ones_like(magnitude), where=largest > 0)
    relative **= power
    # the largest source has relative magnitude 1, so the denominator is at least 1
    return relative / relative.sum(axis=0, keepdims=True)
