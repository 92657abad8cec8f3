"""Python API for separating songs: :class:`Separator`.

Shape legend: S sources, C audio channels, T time (samples).

    from wavesep.api import Separator
    sep = Separator("default")                    # or "tiny-untrained", a .pt file, a run dir
    stems = sep.separate_file("song.mp3")         # {"accompaniment": (C, T), "vocals": (C, T)}
    sep.save(stems, "out/song", sample_rate=sep.last_sample_rate)

The command line (:mod:`wavesep.separate`) is a thin layer over this class, which is a thin layer
over :func:`wavesep.apply.separate`.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Mapping, Optional, Union

import torch
from torch import Tensor

from . import apply, audio, postfilter as postfilters
from .atomic import atomic_folder
from .streaming import DEFAULT_HOP_SECONDS, SeparationStream
from .errors import AudioError
from .model import WaveUNet
from .pretrained import DEFAULT_MODEL, get_model

PathLike = Union[str, os.PathLike]

# Output encodings by name (soundfile subtypes).
SUBTYPES = {"int16": "PCM_16", "int24": "PCM_24", "float32": "FLOAT"}


def rest_name(stem: str) -> str:
    """Name of "everything but ``stem``" in two-stem output: ``no_<stem>`` (e.g. ``no_vocals``).

    One rule for every stem and model: ``accompaniment`` would be ambiguous with a vocals model's
    own accompaniment stem and meaningless for ``--two-stems drums``.
    """
    return f"no_{stem}"


def two_stems(stems: Mapping[str, Tensor], stem: str) -> dict:
    """``{stem: stems[stem], "no_<stem>": sum of all the other stems}``.

    With a "difference"-output model (and clip "none") the two add up to the mixture.
    """
    if stem not in stems:
        raise ValueError(f"unknown stem {stem!r} for --two-stems: this model has {', '.join(stems)}")
    rest = None
    for name, wav in stems.items():
        if name != stem:
            rest = wav.clone() if rest is None else rest.add_(wav)
    return {stem: stems[stem], rest_name(stem): rest}


class Separator:
    """Separates mixtures with one model, keeping it loaded.

    Args:
        model: a registered name (:func:`wavesep.pretrained.names`), a checkpoint file, a run
            directory, or a :class:`~wavesep.model.WaveUNet` instance.
        device: "auto" (CUDA when available), "cpu", "cuda" or "cuda:N".
        segment_seconds: output window length (s) of :func:`wavesep.apply.separate`.
        batch_size: windows per forward pass; None chooses (1 on CPU, fitted to memory on CUDA).
        precision: "auto" (default: bfloat16 where the device computes it natively, see
            :func:`wavesep.apply.resolve_precision`; float32 elsewhere), None / "float32" (exact),
            "float16" or "bfloat16" (autocast).
        clip: "none", "clamp" or "rescale" (:func:`wavesep.apply.clip_stems`), applied to the
            returned stems (after ``two_stems`` merging, when asked for).
        channel_policy: for inputs with more than two channels: "error", "downmix", "first" or
            "split" (each channel separated on its own).
        two_stems: a stem name: return that stem and ``no_<stem>`` (the sum of the others).
        postfilter: "auto" (the one the model's metadata names, "none" if none), "none",
            "ratio-mask" or "ratio-mask-fullband" (:mod:`wavesep.postfilter`).

    Attributes:
        model, name (used for output folders), sources (names of the returned stems),
        sample_rate (the model's, Hz), last_sample_rate (of the last file separated).
    """

    def __init__(
        self,
        model: Union[str, os.PathLike, WaveUNet] = DEFAULT_MODEL,
        device="auto",
        segment_seconds: float = apply.DEFAULT_SEGMENT_SECONDS,
        batch_size: Optional[int] = None,
        precision: Optional[str] = "auto",
        clip: str = "none",
        channel_policy: str = "error",
        two_stems: Optional[str] = None,
        postfilter: str = "auto",
    ):
        if isinstance(model, WaveUNet):
            self.model = model
            self.name = getattr(model, "name", None) or "model"
        else:
            self.model = get_model(model)
            self.name = self.model.name
        if clip not in apply.CLIP_MODES:
            raise ValueError(f"clip must be one of {apply.CLIP_MODES}, got {clip!r}")
        if precision not in apply.PRECISIONS:
            raise ValueError(f"precision must be one of {apply.PRECISIONS}, got {precision!r}")
        if channel_policy not in apply.CHANNEL_POLICIES:
            raise ValueError(f"channel_policy must be one of {apply.CHANNEL_POLICIES}, got {channel_policy!r}")
        if two_stems is not None and two_stems not in self.model.sources:
            raise ValueError(
                f"two_stems={two_stems!r} is not a stem of this model ({', '.join(self.model.sources)})"
            )
        self.postfilter = postfilters.resolve(postfilter, getattr(self.model, "metadata", None))
        self.device = apply.resolve_device(device)
        if self.model_device() != self.device:
            # Moved once here rather than at every call; a caller's instance is copied, not moved.
            if isinstance(model, WaveUNet):
                self.model = copy.deepcopy(self.model)
            self.model = self.model.to(self.device)
        self.segment_seconds = segment_seconds
        self.batch_size = batch_size
        self.precision = precision
        self.clip = clip
        self.channel_policy = channel_policy
        self.two_stems = two_stems
        self.last_sample_rate: Optional[int] = None

    def model_device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    @property
    def sources(self) -> tuple:
        if self.two_stems is not None:
            return (self.two_stems, rest_name(self.two_stems))
        return tuple(self.model.sources)

    def separate_tensor(self, wav: Tensor, sample_rate: int, progress=None) -> dict:
        """Separates a mixture (C, T) at ``sample_rate`` Hz.

        Returns:
            {stem name: Tensor (C_out, T)} in :attr:`sources` order, float32 on the CPU, at
            ``sample_rate`` and of the input's length (C_out: see :func:`wavesep.apply.separate`).
        """
        if not isinstance(wav, Tensor) or wav.dim() != 2:
            raise ValueError(f"expected a mixture tensor of shape (C, T), got {getattr(wav, 'shape', type(wav))}")
        estimates = apply.separate(
            self.model,
            wav,
            sample_rate,
            segment_seconds=self.segment_seconds,
            batch_size=self.batch_size,
            device=self.device,
            precision=self.precision,
            clip="none",
            progress=progress,
            channel_policy=self.channel_policy,
            postfilter=self.postfilter,
        )  # (S, C_out, T)
        stems = dict(zip(self.model.sources, estimates))
        if self.two_stems is not None:
            stems = two_stems(stems, self.two_stems)
        if self.clip != "none":
            # In place, stem by stem: no stacked copy of the whole track's stems.
            apply.clip_tensors(list(stems.values()), self.clip)
        return stems

    def stream(self, sample_rate: int, channels: int, hop_seconds: float = DEFAULT_HOP_SECONDS) -> SeparationStream:
        """A :class:`wavesep.streaming.SeparationStream` with this separator's model and settings,
        for blocks (``channels``, n) at ``sample_rate`` Hz.

        ``stream.process(block)`` returns {stem: (C_out, m)} for the samples that are exact so
        far, ``stream.flush()`` the rest; concatenated, they equal :meth:`separate_tensor` of the
        whole input up to float rounding. ``hop_seconds`` (the network's window hop) is part of
        the latency. The clip mode must be "none" or "clamp" ("rescale" needs the whole track).
        """
        return SeparationStream(
            self.model, sample_rate, channels, hop_seconds=hop_seconds, device=self.device,
            precision=self.precision, channel_policy=self.channel_policy, postfilter=self.postfilter,
            clip=self.clip, two_stems=self.two_stems,
        )

    def separate_file(self, path: PathLike, progress=None) -> dict:
        """Reads an audio file (any format :func:`wavesep.audio.read` knows) and separates it.

        Returns:
            {stem name: Tensor (C_out, T)} at the file's own sample rate (also stored in
            :attr:`last_sample_rate`) and exact length.

        Raises:
            AudioError: unreadable, empty or corrupt file, NaN/Inf samples, refused channels.
            MissingFFmpegError: the format needs ffmpeg.
        """
        wav, rate = audio.read(path)
        self.last_sample_rate = rate
        try:
            return self.separate_tensor(wav, rate, progress=progress)
        except AudioError as exc:
            raise AudioError(f"{path}: {exc}") from None

    def save(
        self,
        stems: Mapping[str, Tensor],
        folder: PathLike,
        sample_rate: Optional[int] = None,
        *,
        encoding: str = "int16",
        extension: str = "wav",
    ) -> dict:
        """Writes every stem to ``folder/<stem>.<extension>``, as a set: all stems are written into
        a temporary folder, then moved into ``folder`` (:func:`wavesep.atomic.atomic_folder`), so a
        failure leaves none of them and any previous files as they were.

        Args:
            stems: {name: Tensor (C, T)}.
            folder: created if missing.
            sample_rate: Hz; default :attr:`last_sample_rate`.
            encoding: "int16" (default), "int24" or "float32" (flac: integers only).
            extension: "wav" or "flac".

        Returns:
            {stem name: written Path}.
        """
        return save_stems(stems, folder, sample_rate or self.last_sample_rate, encoding=encoding, extension=extension)


def save_stems(
    stems: Mapping[str, Tensor],
    folder: PathLike,
    sample_rate: Optional[int],
    *,
    encoding: str = "int16",
    extension: str = "wav",
) -> dict:
    """Writes {name: Tensor (C, T)} to ``folder/<name>.<extension>``; see :meth:`Separator.save`."""
    if sample_rate is None:
        raise ValueError("save needs the sample rate of the stems")
    if encoding not in SUBTYPES:
        raise ValueError(f"encoding must be one of {', '.join(SUBTYPES)}, got {encoding!r}")
    if extension not in ("wav", "flac"):
        raise ValueError(f"extension must be 'wav' or 'flac', got {extension!r}")
    if extension == "flac" and encoding == "float32":
        raise ValueError("FLAC cannot hold float samples: use int16 or int24 with flac")
    folder = Path(folder)
    try:
        # All stems are written into a temporary folder first: a failure leaves none of them.
        with atomic_folder(folder) as staging:
            for name, wav in stems.items():
                audio.write(staging / f"{name}.{extension}", wav, sample_rate, SUBTYPES[encoding])
    except OSError as exc:
        raise AudioError(f"cannot write the stems into {folder}: {exc.strerror or exc}") from None
    return {name: folder / f"{name}.{extension}" for name in stems}


__all__ = ["SUBTYPES", "Separator", "rest_name", "save_stems", "two_stems"]
