"""What gets evaluated: methods (a model, a folder of estimates, an oracle), their options and
targets, and the separation model behind a ``--model`` name or path."""

from __future__ import annotations

import importlib.util
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

from wavesep.data.tracks import AUDIO_EXTENSIONS, TrackSpec
from wavesep.errors import CheckpointError, DataError
from wavesep.evaluation.scoring import TARGET_STEMS, evaluation_groups
from wavesep.metrics import aggregate as agg


#: Targets of the oracle rows when nothing else decides them: the SiSEC 2018 table's columns.
DEFAULT_ORACLE_TARGETS = ("vocals", "drums", "bass", "other", "accompaniment")


#: ``--oracle`` choices -> result folder (method) names, after the SiSEC 2018 names.
ORACLES = {"irm": "IRM2", "mix": "MIX"}
_ORACLE_LABELS = {"irm": "IRM2 oracle (power ratio mask)", "mix": "mixture as estimate"}


# ---------------------------------------------------------------------- methods and options


@dataclass(frozen=True)
class Method:
    """Something to evaluate, and the name of its result folder.

    Attributes:
        kind: "model", "estimates" or "oracle".
        source: model name or checkpoint path; estimates folder; "irm" or "mix".
        name: result folder name (museval's ``MethodStore.add_eval_dir`` uses it as the method).
    """

    kind: str
    source: str
    name: str

    @classmethod
    def model(cls, name_or_path: str, name: Optional[str] = None) -> "Method":
        """A separation model: a pretrained name or a checkpoint file / training run folder."""
        if name is None and _has_pretrained():
            from wavesep.pretrained import model_name

            name = model_name(name_or_path)  # the folder name wavesep-separate uses too
        elif name is None:
            path = Path(os.path.expanduser(name_or_path))
            if path.exists():
                name = path.name if path.is_dir() or path.stem not in ("best", "last") else path.parent.name
            else:
                name = name_or_path
        return cls("model", str(name_or_path), _folder_name(name))

    @classmethod
    def estimates(cls, folder, name: Optional[str] = None) -> "Method":
        """A folder of estimates in the MUSDB layout ``folder/<subset>/<track>/<target>.wav``."""
        path = Path(os.path.expanduser(str(folder))).absolute()
        return cls("estimates", str(path), _folder_name(name or path.name))

    @classmethod
    def oracle(cls, which: str) -> "Method":
        """``"irm"`` (IRM2, power-ratio mask) or ``"mix"`` (mixture as estimate)."""
        if which not in ORACLES:
            raise DataError(f"unknown oracle {which!r}; choose one of {', '.join(ORACLES)}")
        return cls("oracle", which, ORACLES[which])

    @property
    def label(self) -> str:
        return _ORACLE_LABELS[self.source] if self.kind == "oracle" else self.name


def _folder_name(name: str) -> str:
    """A method name usable as one folder name."""
    cleaned = re.sub(r"[\\/:*?\"<>|\s]+", "_", str(name)).strip("._")
    if not cleaned:
        raise DataError(f"cannot make a result folder name from {name!r}; pass --name")
    return cleaned


@dataclass(frozen=True)
class EvalOptions:
    """How tracks are scored (all plain data, so it travels to worker processes).

    Attributes:
        targets: targets to score, musdb names (see :data:`TARGET_STEMS`).
        backend: "fast" (:func:`wavesep.metrics.bss_eval_v4`) or "museval".
        musical_noise: compute the spot rate and kurtosis ratio.
        fix_length: zero-pad / truncate estimates of the wrong length (museval's behaviour)
            instead of refusing them.
        force: re-evaluate tracks whose result file exists.
        window_seconds / hop_seconds: BSS Eval framing (SiSEC 2018: 1 s / 1 s).
        device / segment_seconds / batch_size: passed to :func:`wavesep.apply.separate`.
        postfilter: "auto" (the model's, see :func:`wavesep.postfilter.resolve`), "none",
            "ratio-mask" or "ratio-mask-fullband"; for --model only.
    """

    targets: Tuple[str, ...]
    backend: str = "fast"
    musical_noise: bool = True
    fix_length: bool = False
    force: bool = False
    window_seconds: float = 1.0
    hop_seconds: float = 1.0
    device: str = "auto"
    segment_seconds: float = 10.0
    batch_size: Optional[int] = None
    postfilter: str = "auto"


@dataclass(frozen=True)
class TrackOutcome:
    """What happened to one track: ``status`` is "evaluated" or "skipped"."""

    track: str
    path: str
    status: str
    seconds: float = 0.0
    note: str = ""


def load_separation_model(name_or_path: str):
    """A model from a pretrained name or a checkpoint (file or training run folder).

    :func:`wavesep.pretrained.get_model` decides (a registered name wins over a file of the same
    name); without that module, checkpoints are read with :func:`wavesep.checkpoint.load_model`.

    Raises:
        CheckpointError: neither a known name nor a checkpoint (or an unreadable checkpoint).
    """
    if _has_pretrained():
        from wavesep import pretrained

        return pretrained.get_model(name_or_path)
    from wavesep import checkpoint

    path = Path(os.path.expanduser(name_or_path))
    if not path.exists():
        raise CheckpointError(
            f"model {name_or_path!r}: no such checkpoint file or run folder; pass the path of a .pt "
            "checkpoint or a training run folder"
        )
    return checkpoint.load_model(path)


def _has_pretrained() -> bool:
    return importlib.util.find_spec("wavesep.pretrained") is not None


def _model_plan(sources: Sequence[str], targets: Sequence[str], model_name: str) -> Dict[str, Tuple[int, ...]]:
    """For each target, the indices of the model sources whose sum estimates it."""
    plan = {}
    for target in targets:
        if target in sources:
            plan[target] = (list(sources).index(target),)
            continue
        want = set(TARGET_STEMS[target])
        parts = [i for i, s in enumerate(sources) if s in TARGET_STEMS and set(TARGET_STEMS[s]) <= want]
        stems = [st for i in parts for st in TARGET_STEMS[sources[i]]]
        if not parts or set(stems) != want or len(stems) != len(want):
            raise DataError(
                f"model {model_name} estimates {', '.join(sources)}; the target {target!r} "
                f"({' + '.join(TARGET_STEMS[target])}) cannot be formed from them; choose --targets among them"
            )
        plan[target] = tuple(parts)
    return plan


def resolve_targets(
    method: Method,
    tracks: Sequence[TrackSpec],
    folder_subset: str,
    requested: Optional[Sequence[str]] = None,
    model=None,
    fallback: Optional[Sequence[str]] = None,
) -> Tuple[str, ...]:
    """The targets to score for a method, in musdb order.

    ``requested`` (``--targets``) wins. Otherwise: a model's sources; for an estimates folder,
    the known target files of the first track's folder; for an oracle, ``fallback`` (the targets
    of the other method evaluated with it) or :data:`DEFAULT_ORACLE_TARGETS`.

    Raises:
        DataError: an unknown target name, a target the model cannot produce, or an estimates
            folder without target files.
    """
    if requested:
        unknown = [t for t in requested if t not in TARGET_STEMS]
        if unknown:
            raise DataError(f"unknown target {unknown[0]!r}; choose among {', '.join(TARGET_STEMS)}")
        targets = agg.ordered_targets(requested)
    elif method.kind == "model":
        unknown = [s for s in model.sources if s not in TARGET_STEMS]
        if unknown:
            raise DataError(
                f"model {method.name} estimates {', '.join(model.sources)}, but {unknown[0]!r} is not a "
                f"MUSDB target ({', '.join(TARGET_STEMS)}); choose --targets among those it has"
            )
        targets = agg.ordered_targets(model.sources)
    elif method.kind == "estimates":
        folder = Path(method.source) / folder_subset / tracks[0].name
        if not folder.is_dir():
            raise DataError(f"no estimates folder {folder} for track {tracks[0].name!r}: {_ESTIMATES_LAYOUT}")
        present = {p.stem for p in folder.iterdir() if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS}
        targets = agg.ordered_targets(t for t in TARGET_STEMS if t in present)
        if not targets:
            raise DataError(
                f"{folder} holds no target file ({', '.join(t + '.wav' for t in TARGET_STEMS)}): {_ESTIMATES_LAYOUT}"
            )
    else:
        targets = agg.ordered_targets(fallback or DEFAULT_ORACLE_TARGETS)
    if method.kind == "model":
        _model_plan(model.sources, targets, method.name)
    evaluation_groups(targets)  # refuse unscorable sets before any work
    return targets


_ESTIMATES_LAYOUT = "an estimates folder holds <subset>/<track>/<target>.wav (museval's layout)"
