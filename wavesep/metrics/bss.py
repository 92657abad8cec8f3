"""BSS Eval v4 ("images" metrics with time-invariant distortion filters), as in museval.

Numerically this is ``museval.evaluate(..., mode="v4")`` (Liutkus, Stoter and Ito, LVA/ICA
2018; Vincent, Gribonval and Fevotte, IEEE TASLP 2006), computed another way:

- The correlations of the references with each other and with the estimates, at the lags the
  filters need, come from a blocked FFT: cross-spectra of short blocks summed over the track,
  one small inverse FFT per channel pair. Memory does not grow with the track length.
- The normal equations of the filters are block Toeplitz; a block Levinson recursion solves
  them in O(L^2) block steps, where museval builds the dense (S C L)^2 Gram matrix and runs
  one LU factorisation of it per estimate.
- All frames are projected at once in the frequency domain and their energies read there
  (Parseval), instead of a convolution per frame, source and channel pair.

Shape legend: S sources, T samples, C audio channels, L filter taps, N frames, F frequency bins.
"""

from __future__ import annotations

import math
from typing import Tuple, Union

import numpy as np
import scipy.fft
import torch

from wavesep.errors import AudioError, DependencyError

__all__ = ["bss_eval_v4", "FILTER_TAPS"]

#: Length of the distortion filters in samples (museval's ``filters_len``).
FILTER_TAPS = 512

# FFT length of the blocked correlation. The per-block cross-spectrum products cost about
# n_fft / (n_fft - 2 L) times their minimum, so the blocks are kept well above 2 L.
_CORR_FFT_SIZE = 16384
# Bytes of one complex working array per chunk: bounds memory whatever the track length, and
# staying under glibc's largest mmap threshold (32 MiB) lets it recycle freed chunks instead
# of mapping, and page-faulting, fresh memory on every iteration.
_CHUNK_BYTES = 16 << 20

Device = Union[str, torch.device, None]


def bss_eval_v4(
    references: np.ndarray,
    estimates: np.ndarray,
    sample_rate: float,
    window_seconds: float = 1.0,
    hop_seconds: float = 1.0,
    device: Device = None,
) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Framewise BSS Eval v4 image metrics, equal to ``museval.evaluate`` in mode ``"v4"``.

    The distortion filters (``FILTER_TAPS`` = 512 taps, from every reference channel to every
    estimate channel) are fitted once over the whole track by least squares; SDR, ISR, SIR and
    SAR are then measured on windows of ``int(window_seconds * sample_rate)`` samples taken
    every ``int(hop_seconds * sample_rate)`` samples, dropping the last partial window (a track
    shorter than one window gives a single frame over the whole track). A frame in which any
    reference or any estimate is silent (museval's rule: its sum over channels is zero at every
    sample of the frame) is NaN for every source and metric.

    Like museval, this is only well posed when the references are not numerically band-limited
    (some energy, if only a noise floor, at every frequency); otherwise the filters are
    ill-determined and both implementations return rounding-dependent ISR, SIR and SAR.

    Args:
        references: true source images, shape (S, T, C), any float dtype and scale.
        estimates: estimated source images in the same order, shape (S, T, C).
        sample_rate: sampling rate of both, in Hz.
        window_seconds: frame length in seconds (SiSEC 2018: 1.0).
        hop_seconds: frame hop in seconds (SiSEC 2018: 1.0).
        device: torch device to compute on; ``None`` picks CUDA when available, else CPU.
            Everything is computed in float64. On a CPU shared with other busy processes,
            ``torch.set_num_threads(1)`` in the caller can make this several times faster
            (torch's worker threads wait on descheduled peers at every operation).

    Returns:
        ``(SDR, ISR, SIR, SAR)``: float64 arrays of shape (S, N), in dB; NaN in silent
        frames. A frame whose estimate equals its reference exactly has SDR ``+inf`` (museval
        reports a rounding-level value of about 350 dB there).

    Raises:
        AudioError (a ValueError): shapes differ or are not (S, T, C), samples are not finite,
            a source is silent over the whole track, or the window or hop is under one sample.
        DependencyError: ``device`` names CUDA but torch sees no CUDA device.
    """
    refs, ests = _checked_shapes(references, estimates)
    settings = (sample_rate, window_seconds, hop_seconds)
    if not all(math.isfinite(v) and v > 0 for v in settings):
        raise AudioError(
            f"sample_rate={sample_rate}, window_seconds={window_seconds} and "
            f"hop_seconds={hop_seconds} must all be positive finite numbers"
        )
    window = int(window_seconds * sample_rate)
    hop = int(hop_seconds * sample_rate)
    if not (window >= 1 and hop >= 1):
        raise AudioError(
            f"window_seconds={window_seconds}, hop_seconds={hop_seconds} at "
            f"sample_rate={sample_rate} Hz give window={window}, hop={hop} samples; both "
            "must be at least one sample (use a positive sample rate and longer frames)"
        )
    dev = _pick_device(device)
    x, x_nonzero = _prepared("references", refs, dev)  # (S, C, T), (S, T)
    y, y_nonzero = _prepared("estimates", ests, dev)

    filt_all, filt_own = _distortion_filters(x, y)
    window = min(window, x.shape[-1])  # museval: one frame over the whole of a short track
    out = _framewise_metrics(x, y, filt_all, filt_own, window, hop)  # (4, S, N)
    # museval: a frame where any reference or estimate has a zero channel sum throughout is
    # NaN for all sources
    active = torch.ones(out.shape[-1], dtype=torch.bool, device=dev)
    for nonzero in (x_nonzero, y_nonzero):
        active &= nonzero.unfold(-1, window, hop).any(dim=-1).all(dim=0)
    out[..., ~active] = math.nan
    sdr, isr, sir, sar = out.cpu().numpy()
    return sdr, isr, sir, sar


def _checked_shapes(references, estimates) -> Tuple[np.ndarray, np.ndarray]:
    refs = np.asarray(references)
    ests = np.asarray(estimates)
    if refs.ndim != 3 or ests.ndim != 3:
        raise AudioError(
            f"references and estimates must be arrays of shape (sources, samples, channels); "
            f"got shapes {refs.shape} and {ests.shape} (add a trailing axis for mono)"
        )
    if refs.shape != ests.shape:
        raise AudioError(
            f"references have shape {refs.shape} but estimates have shape {ests.shape}; "
            "they must match as (sources, samples, channels): trim or pad the estimates "
            "to the reference length and pass one estimate per reference"
        )
    if min(refs.shape) == 0:
        raise AudioError(f"references and estimates are empty (shape {refs.shape})")
    for name, arr in (("references", refs), ("estimates", ests)):
        if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
            raise AudioError(f"{name} have dtype {arr.dtype}; pass real-valued samples")
    return refs, ests


def _pick_device(device: Device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DependencyError(
            f"device={device!r} was requested for BSS Eval but torch sees no CUDA device; "
            "pass device='cpu', or None to pick automatically"
        )
    return dev


def _prepared(name: str, arr: np.ndarray, dev: torch.device) -> Tuple[torch.Tensor, torch.Tensor]:
    """(S, T, C) array -> (S, C, T) tensor view on ``dev`` (float32 or float64, not copied on
    CPU), plus the (S, T) mask of samples whose channel sum is non-zero (museval's "sound")."""
    if arr.dtype not in (np.float32, np.float64) or not arr.dtype.isnative:
        arr = arr.astype(np.float64)
    flat = torch.from_numpy(np.ascontiguousarray(arr)).to(dev)  # (S, T, C)
    lo, hi = torch.aminmax(flat)  # NaN propagates into both
    if not (math.isfinite(lo.item()) and math.isfinite(hi.item())):
        raise AudioError(f"{name} contain NaN or infinite samples; fix the signals first")
    num_sources, length, num_channels = flat.shape
    nonzero = torch.empty(num_sources, length, dtype=torch.bool, device=dev)
    step = max(1, _CHUNK_BYTES // (8 * num_sources))
    for t0 in range(0, length, step):
        part = flat[:, t0 : t0 + step]  # (S, T', C)
        # channel by channel: a reduction over the short, strided channel axis is far slower
        channel_sum = part[..., 0].to(torch.float64, copy=True)
        for c in range(1, num_channels):
            channel_sum += part[..., c]
        nonzero[:, t0 : t0 + step] = channel_sum != 0
    silent = ~nonzero.any(dim=1)
    if bool(silent.any()):
        raise AudioError(
            f"{name} of source index(es) {torch.nonzero(silent).flatten().tolist()} are "
            "silent over the whole track (channel sum zero everywhere); BSS Eval is "
            "undefined for them, as in museval: leave those sources out of the evaluation"
        )
    return flat.permute(0, 2, 1), nonzero


def _segment(sig: torch.Tensor, start: int, stop: int) -> torch.Tensor:
    """Samples start..stop-1 of sig (S, C, T) as float64 rows (S*C, stop - start), taking
    the signal as zero outside [0, T)."""
    num_sources, num_channels, length = sig.shape
    out = torch.zeros(
        num_sources, num_channels, stop - start, dtype=torch.float64, device=sig.device
    )
    lo, hi = max(start, 0), min(stop, length)
    if hi > lo:
        out[..., lo - start : hi - start] = sig[..., lo:hi]
    return out.view(num_sources * num_channels, stop - start)


def _lagged_correlations(x: torch.Tensor, y: torch.Tensor, max_lag: int) -> torch.Tensor:
    """Linear cross-correlations ``r[m, u, v] = sum_t x[u, t + m] z[v, t]`` for |m| <= max_lag,
    where z stacks the rows of x then those of y.

    x, y: (S, C, T) signals, zero outside [0, T); u runs over the S*C rows of x, v over the
    2*S*C rows of z. Returns (2 * max_lag + 1, S*C, 2*S*C), row ``m + max_lag`` holding lag m.
    """
    length = x.shape[-1]
    rows = x.shape[0] * x.shape[1]
    margin = 2 * max_lag
    block = min(length, _CORR_FFT_SIZE - margin)
    n_fft = scipy.fft.next_fast_len(block + margin, real=True)
    num_bins = n_fft // 2 + 1
    num_blocks = -(-length // block)
    step = max(1, _CHUNK_BYTES // (16 * num_bins * 2 * rows))

    cross = torch.zeros(num_bins, rows, 2 * rows, dtype=torch.complex128, device=x.device)
    for b0 in range(0, num_blocks, step):
        b1 = min(b0 + step, num_blocks)
        # z block b spans [b*B, (b+1)*B) and meets x on [b*B - max_lag, (b+1)*B + max_lag);
        # with n_fft >= B + 2 max_lag their circular correlation does not wrap around
        nb = b1 - b0
        x_part = _segment(x, b0 * block - max_lag, b1 * block + max_lag)
        x_blocks = x_part.unfold(-1, block + margin, block)  # (SC, nb, B + 2 max_lag)
        xf = torch.fft.rfft(x_blocks, n=n_fft).permute(2, 0, 1).contiguous()  # (F, SC, nb)
        zf = torch.empty(num_bins, nb, 2 * rows, dtype=torch.complex128, device=x.device)
        z_parts = (x_part[:, max_lag : max_lag + nb * block], _segment(y, b0 * block, b1 * block))
        for k, part in enumerate(z_parts):
            spec = torch.fft.rfft(part.unfold(-1, block, block), n=n_fft)  # (SC, nb, F)
            zf[..., k * rows : (k + 1) * rows] = spec.permute(2, 1, 0).conj()
        # sum over blocks of X conj(Z): one small matrix product per frequency
        cross.baddbmm_(xf, zf)
    circ = torch.fft.irfft(cross, n=n_fft, dim=0)  # (n_fft, SC, 2 SC)
    return circ[: 2 * max_lag + 1]


def _distortion_filters(x: torch.Tensor, y: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Least-squares FILTER_TAPS-tap filters from the delayed references to each estimate.

    x, y: (S, C, T) references and estimates. Returns
    ``filt_all`` (S*C_out, S*C_in, L): estimate channel from all reference channels;
    ``filt_own`` (S*C_out, S*C_in, L): estimate channel from its own reference's channels
    only, zero between different sources.
    """
    taps = FILTER_TAPS
    num_sources, num_channels = x.shape[:2]
    rows = num_sources * num_channels
    corr = _lagged_correlations(x, y, taps - 1).cpu().numpy()  # (2L-1, SC, 2 SC)
    # R(k)[u, v] = <x_u advanced by k, x_v>; the normal equations' matrix has block (a, b)
    # equal to R(b - a): block Toeplitz, symmetric since R(-k) = R(k)^T. R(k) and R(-k)^T
    # are rounded apart, so average them to keep the matrix exactly symmetric like museval's
    blocks = corr[..., :rows]
    blocks = 0.5 * (blocks + blocks[::-1].transpose(0, 2, 1))
    # museval adds machine epsilon to the diagonal (absolute, so a no-op for audio); kept
    blocks[taps - 1] += np.finfo(np.float64).eps * np.eye(rows)
    # right-hand side: <x_u delayed tau, y_v> = r_uv[-tau], as (L, SC_in, SC_out)
    rhs = np.ascontiguousarray(corr[::-1, :, rows:][taps - 1 :])

    # projection on the own reference only: the same equations with the blocks between
    # different sources removed, which the recursion keeps block-diagonal throughout
    own = np.kron(np.eye(num_sources), np.ones((num_channels, num_channels)))
    filters = [_solve_block_toeplitz(blocks, rhs), _solve_block_toeplitz(blocks * own, rhs * own)]
    # (L, SC_in, SC_out) -> (SC_out, SC_in, L)
    return tuple(torch.from_numpy(f.transpose(2, 1, 0).copy()).to(x.device) for f in filters)


def _solve_block_toeplitz(blocks: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve the block Toeplitz system sum_b R(b - a) X[b] = D[a] for a = 0..n-1.

    blocks: (2n - 1, m, m), R(k) at row k + n - 1; rhs: (n, m, q). Returns X (n, m, q).
    """
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise"):
            sol = _block_levinson(blocks, rhs)
        if np.isfinite(sol).all():
            return sol
    except (np.linalg.LinAlgError, FloatingPointError):
        pass
    # a leading section is numerically singular (references without energy in some band):
    # a dense LU solve, as museval does, gives its answer to rounding
    num_taps, m, q = rhs.shape
    delay = np.arange(num_taps)
    lag = delay[None, :] - delay[:, None] + num_taps - 1  # (a, b) -> b - a + n - 1
    gram = blocks[lag].transpose(0, 2, 1, 3).reshape(num_taps * m, num_taps * m)
    return np.linalg.solve(gram, rhs.reshape(num_taps * m, q)).reshape(num_taps, m, q)


def _block_levinson(blocks: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Block Levinson recursion (Whittle / Wiggins-Robinson) for ``_solve_block_toeplitz``.

    O(n^2 m^3) operations instead of the O(n^3 m^3) of a dense factorisation. Runs in numpy:
    its many small products stay single-threaded there, which keeps them fast on a busy
    machine where torch's thread pool would wait on descheduled threads at every step.
    """
    n, m, q = rhs.shape
    by_row = np.ascontiguousarray(blocks.transpose(1, 0, 2))  # (m, 2n-1, m): R(k) in columns
    # forward / backward vectors: T_k fwd = [I, 0, ..., 0]^T, T_k bwd = [0, ..., 0, I]^T for
    # the leading k x k block section T_k; block i occupies rows i*m:(i+1)*m
    fwd = np.zeros((n * m, m))
    bwd = np.zeros((n * m, m))
    sol = np.zeros((n * m, q))
    eye = np.eye(m)
    inv0 = np.linalg.inv(blocks[n - 1])
    fwd[:m] = inv0
    bwd[:m] = inv0
    sol[:m] = inv0 @ rhs[0]
    for k in range(1, n):
        km = k * m
        row_last = by_row[:, n - 1 - k : n - 1].reshape(m, km)  # block row k: R(i - k)
        row_first = by_row[:, n : n + k].reshape(m, km)  # block row 0, shifted: R(i + 1)
        err_f = row_last @ fwd[:km]  # what [fwd; 0] leaves in block row k
        err_b = row_first @ bwd[:km]  # what [0; bwd] leaves in block row 0
        err_x = row_last @ sol[:km]
        alpha = np.linalg.inv(eye - err_b @ err_f)
        delta = np.linalg.inv(eye - err_f @ err_b)
        fwd_old = fwd[:km].copy()
        bwd_old = bwd[:km].copy()
        fwd[:km] = fwd_old @ alpha
        fwd[m : km + m] -= bwd_old @ (err_f @ alpha)
        bwd[m : km + m] = bwd_old @ delta
        bwd[:m] = 0.0
        bwd[:km] -= fwd_old @ (err_b @ delta)
        sol[: km + m] += bwd[: km + m] @ (rhs[k] - err_x)
    return sol.reshape(n, m, q)


def _framewise_metrics(
    x: torch.Tensor,
    y: torch.Tensor,
    filt_all: torch.Tensor,
    filt_own: torch.Tensor,
    window: int,
    hop: int,
) -> torch.Tensor:
    """SDR, ISR, SIR, SAR stacked as (4, S, N), from the fixed filters.

    x, y: (S, C, T) references and estimates; window <= T.
    """
    num_sources, num_channels, length = x.shape
    rows = num_sources * num_channels
    taps = filt_all.shape[-1]
    num_frames = (length - window) // hop + 1
    # each frame's projection is the windowed reference filtered with its full tail of
    # taps - 1 samples: a linear convolution, exact in an FFT of this length
    n_fft = scipy.fft.next_fast_len(window + taps - 1, real=True)
    num_bins = n_fft // 2 + 1
    # Parseval weights of a one-sided spectrum
    weight = torch.full((1, num_bins), 2.0 / n_fft, dtype=torch.float64, device=x.device)
    weight[0, 0] = 1.0 / n_fft
    if n_fft % 2 == 0:
        weight[0, -1] = 1.0 / n_fft

    h_all = torch.fft.rfft(filt_all, n=n_fft).permute(2, 0, 1).contiguous()  # (F, SC_out, SC_in)
    h_own = torch.fft.rfft(filt_own, n=n_fft).permute(2, 0, 1).contiguous()

    def energy(spec: torch.Tensor) -> torch.Tensor:  # (F, S*C, N') complex -> (S, N')
        flat = torch.view_as_real(spec).reshape(num_bins, -1).square()
        per_row = (weight @ flat).reshape(num_sources, num_channels, -1, 2)
        return per_row.sum(dim=(1, 3))

    def channel_sum(frames: torch.Tensor) -> torch.Tensor:  # (S*C, N') -> (S, N')
        return frames.view(num_sources, num_channels, -1).sum(dim=1)

    out = torch.empty(4, num_sources, num_frames, dtype=torch.float64, device=x.device)
    step = max(1, _CHUNK_BYTES // (16 * num_bins * rows))
    for t0 in range(0, num_frames, step):
        t1 = min(t0 + step, num_frames)
        start, stop = t0 * hop, (t1 - 1) * hop + window
        xs = _segment(x, start, stop).unfold(-1, window, hop)  # (S*C, N', window)
        ys = _segment(y, start, stop).unfold(-1, window, hop)
        frames = slice(t0, t1)
        # SDR needs no projection: its error is the estimate minus the reference, summed
        # exactly here (museval sums three rounded terms, so an exact estimate gets ~350 dB
        # there and +inf here)
        ref_energy = channel_sum(xs.square().sum(dim=-1))
        out[0, :, frames] = _safe_db(ref_energy, channel_sum((ys - xs).square().sum(dim=-1)))

        target = torch.fft.rfft(xs, n=n_fft).permute(2, 0, 1).contiguous()  # (F, SC, N')
        est = torch.fft.rfft(ys, n=n_fft).permute(2, 0, 1).contiguous()
        proj_all = torch.bmm(h_all, target)  # museval's s_true + e_spat + e_interf
        proj_own = torch.bmm(h_own, target)  # s_true + e_spat
        sir_num, sar_num = energy(proj_own), energy(proj_all)
        # the differences in place: each operand is not needed afterwards
        sar_den = energy(est.sub_(proj_all))  # e_artif
        sir_den = energy(proj_all.sub_(proj_own))  # e_interf
        isr_den = energy(proj_own.sub_(target))  # e_spat
        out[1, :, frames] = _safe_db(ref_energy, isr_den)
        out[2, :, frames] = _safe_db(sir_num, sir_den)
        out[3, :, frames] = _safe_db(sar_num, sar_den)
    return out


def _safe_db(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """10 log10(num / den), +inf where den == 0 (as museval)."""
    ratio = torch.where(den == 0, torch.full_like(num, math.inf), num / den)
    return 10.0 * torch.log10(ratio)
