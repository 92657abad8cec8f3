"""How much of a reference's top band an estimate recovers (e.g. the vocals' air above 11 kHz).

A model that runs at 22.05 kHz cannot output anything above 11.025 kHz, so its vocals lose their
sibilants and air, which then sit in the accompaniment; SDR hardly sees it (that band holds well
under 1% of a voice's energy). This measures it directly.

Shape legend: C channels, T samples.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["HIGH_BAND_HZ", "high_band_recovery"]

#: Default lower edge of the top band, in Hz: the Nyquist frequency of 22.05 kHz models.
HIGH_BAND_HZ = 11025.0
_BLOCK = 1 << 18  # samples per DFT block: bounds memory whatever the track length


def high_band_recovery(reference: np.ndarray, estimate: np.ndarray, sample_rate: float,
                       cutoff_hz: float = HIGH_BAND_HZ) -> dict:
    """Energy of the band above ``cutoff_hz`` in a reference and in an estimate's error.

    Both signals are cut into consecutive blocks of 2**18 samples, and each block's DFT bins
    above ``cutoff_hz`` are kept (an exact linear band split of each block), so with R_h and E_h
    the top bands of the reference and the estimate:

    - ``recovered`` = 1 - ||E_h - R_h||^2 / ||R_h||^2: the share of the reference's top-band
      energy the estimate accounts for (1: all of it, 0: no better than silence there; negative
      when the estimate adds more wrong energy than it recovers);
    - ``energy_ratio`` = ||E_h||^2 / ||R_h||^2;
    - ``reference_share`` = ||R_h||^2 / ||R||^2: how much of the reference lies in the band.

    Args:
        reference, estimate: (C, T) float arrays of the same shape, at ``sample_rate`` Hz.
        sample_rate: Hz.
        cutoff_hz: lower edge of the band in Hz.

    Returns:
        ``{"cutoff_hz", "recovered", "energy_ratio", "reference_share"}``; NaN values when the
        band is empty (``cutoff_hz`` at or above Nyquist) or the reference has no energy there.
    """
    reference = np.asarray(reference, dtype=np.float64)
    estimate = np.asarray(estimate, dtype=np.float64)
    if reference.shape != estimate.shape or reference.ndim != 2:
        raise ValueError(f"expected two (C, T) arrays of one shape, got {reference.shape} and {estimate.shape}")
    ref_band = err_band = est_band = ref_total = 0.0
    length = reference.shape[1]
    for start in range(0, length, _BLOCK):
        r = reference[:, start:start + _BLOCK]
        e = estimate[:, start:start + _BLOCK]
        n = r.shape[1]
        high = np.fft.rfftfreq(n, 1.0 / sample_rate) > cutoff_hz
        # Parseval on the one-sided spectrum: interior bins count twice; the top band never
        # includes DC, and the Nyquist bin (even n) only once
        weight = np.where(high, 2.0, 0.0)
        if n % 2 == 0 and high[-1]:
            weight[-1] = 1.0
        R, E = np.fft.rfft(r, axis=1), np.fft.rfft(e, axis=1)
        ref_band += float(np.sum(weight * np.abs(R) ** 2)) / n
        est_band += float(np.sum(weight * np.abs(E) ** 2)) / n
        err_band += float(np.sum(weight * np.abs(E - R) ** 2)) / n
        ref_total += float(np.sum(r * r))
    out = {"cutoff_hz": float(cutoff_hz), "recovered": math.nan, "energy_ratio": math.nan,
           "reference_share": ref_band / ref_total if ref_total > 0 else math.nan}
    if ref_band > 0:
        out["recovered"] = 1.0 - err_band / ref_band
        out["energy_ratio"] = est_band / ref_band
    return out
