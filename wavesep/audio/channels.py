"""Channel conversion of (C, T) signals: mono <-> stereo always, other counts by a named policy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from wavesep.errors import AudioError

__all__ = ["CHANNEL_POLICIES", "convert_channels"]

CHANNEL_POLICIES = ("error", "downmix", "first")


def _convert_channels_for(wav: torch.Tensor, channels: int, policy: str, path: Path):
    try:
        return convert_channels(wav, channels, policy)
    except AudioError as exc:
        raise AudioError(f"{path}: {exc}") from None


def convert_channels(wav: torch.Tensor, channels: int, policy: str = "error") -> torch.Tensor:
    """Adapt a (C, T) signal to ``channels`` channels.

    Always done, whatever ``policy``: same count -> ``wav`` itself; mono -> N channels by
    duplication; stereo -> mono by the mean of the two channels. Every other case (more than
    two input channels, or stereo to more than two) is ambiguous and follows ``policy``:

    * ``"error"`` (default): raise :class:`AudioError` asking the caller to choose a policy,
      since a silent choice could drop or blend channels the user cares about;
    * ``"downmix"``: the mean of all channels (mono), duplicated to ``channels``;
    * ``"first"``: the first ``channels`` channels (error if there are fewer).

    Args:
        wav: tensor (C, T).
        channels: wanted number of channels (>= 1).
        policy: one of :data:`CHANNEL_POLICIES`.

    Returns:
        Tensor (channels, T), same dtype and device: ``wav`` itself when the count already
        matches, otherwise a new tensor (duplicated channels are real copies, safe to modify).
    """
    if policy not in CHANNEL_POLICIES:
        raise AudioError(f"channel policy must be one of {CHANNEL_POLICIES}, got {policy!r}")
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
        raise AudioError(f"channels must be a whole number >= 1, got {channels!r}")
    if wav.dim() != 2:
        raise AudioError(f"expected audio of shape (C, T), got shape {tuple(wav.shape)}")
    have = wav.shape[0]
    if have == channels:
        return wav
    if have == 1:
        return wav.repeat(channels, 1)
    if have == 2 and channels == 1:
        return wav.mean(dim=0, keepdim=True)
    if policy == "downmix":
        return wav.mean(dim=0, keepdim=True).repeat(channels, 1)
    if policy == "first":
        if have < channels:
            raise AudioError(
                f"cannot take the first {channels} channels of audio with only {have} channels; "
                "use the 'downmix' channel policy instead"
            )
        return wav[:channels].clone()
    raise AudioError(
        f"audio has {have} channels and {channels} are wanted: choose how to convert them with "
        "the channel policy 'downmix' (mean of all channels, then duplicated) or 'first' "
        f"(keep the first {channels} channels)"
    )
