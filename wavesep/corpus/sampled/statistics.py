"""Variety statistics of a corpus written with the sampled renderer (pieces, instruments, singers,
tempi, vocal time), read back from the tracks' ``meta/<track>.json`` files."""

from __future__ import annotations

import json
import math
import os

import numpy as np

from wavesep.corpus.sampled.arrangement import SPLITS, STEMS
from wavesep.errors import DataError


def corpus_statistics(root: str) -> dict:
    """Variety statistics of a corpus written by wavesep.synth with the sampled renderer.

    Reads the per-track JSON files in ``root/meta/`` (the info dict of :func:`render`,
    at top level or under an "info"/"render" key) and the stem files
    ``root/{train,valid,test}/<track>/<stem>.wav``.

    Returns:
        dict with songs, minutes, distinct pieces, families, voices, singing methods, drum
        kits, instrument programs, singing repairs (Sinsy phrases re-sung or dropped), vocal
        activity share (mean/min/max) and per-stem RMS range in dBFS (over each file, as
        written).
    """
    import soundfile as sf

    meta_dir = os.path.join(root, "meta")
    if not os.path.isdir(meta_dir):
        raise DataError(f"{meta_dir} does not exist; build the corpus first with "
                        "python -m wavesep.synth OUT --renderer sampled ...")
    infos = []
    for fname in sorted(os.listdir(meta_dir)):
        if not fname.endswith(".json"):
            continue
        with open(os.path.join(meta_dir, fname)) as fh:
            data = json.load(fh)
        info = _find_info(data)
        if info is not None:
            infos.append(info)
    programs, voices, methods, kits, pieces, families = set(), {}, {}, {}, set(), {}
    activity, seconds_total = [], 0.0
    repairs = {"sinsy_retries": 0, "dropped_phrases": 0}
    by_split: dict = {}
    for info in infos:
        pieces.add(info["piece"])
        families[info["piece_family"]] = families.get(info["piece_family"], 0) + 1
        voices[info["voice"]] = voices.get(info["voice"], 0) + 1
        methods[info["singing_method"]] = methods.get(info["singing_method"], 0) + 1
        kits[info["drum_kit"]] = kits.get(info["drum_kit"], 0) + 1
        programs.add(int(info["bass_program"]))
        programs.update(int(o["program"]) for o in info.get("other_instruments", []))
        activity.append(float(info["vocal_activity"]))
        for key, count in info.get("singing_report", {}).items():
            repairs[key] = repairs.get(key, 0) + int(count)
        seconds_total += float(info["seconds"])
        by_split.setdefault(info["split"], set()).add(info["piece"])
    rms: dict = {s: [] for s in STEMS}
    for split in SPLITS:
        d = os.path.join(root, split)
        if not os.path.isdir(d):
            continue
        for track in sorted(os.listdir(d)):
            for s in STEMS:
                path = os.path.join(d, track, f"{s}.wav")
                if os.path.isfile(path):
                    x, _ = sf.read(path, dtype="float32")
                    r = float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))
                    rms[s].append(20 * math.log10(r) if r > 0 else -math.inf)
    splits = sorted(by_split)
    overlap = {f"{a}&{b}": len(by_split[a] & by_split[b])
               for i, a in enumerate(splits) for b in splits[i + 1:]}
    return {
        "songs": len(infos),
        "minutes": round(seconds_total / 60.0, 2),
        "distinct_pieces": len(pieces),
        "piece_families": families,
        "piece_overlap_between_splits": overlap,
        "singing_methods": methods,
        "distinct_voices": len(voices),
        "voices": voices,
        "drum_kits": kits,
        "distinct_programs": len(programs),
        "singing_repairs": repairs,
        "vocal_activity": ({"mean": round(float(np.mean(activity)), 3),
                            "min": round(float(np.min(activity)), 3),
                            "max": round(float(np.max(activity)), 3)} if activity else {}),
        "stem_rms_dbfs": {s: ({"min": round(min(v), 1), "median": round(float(np.median(v)), 1),
                               "max": round(max(v), 1)} if v else {}) for s, v in rms.items()},
    }


def _find_info(data):
    if isinstance(data, dict):
        if "piece" in data and "voice" in data:
            return data
        for key in ("info", "render", "renderer_info"):
            if key in data:
                found = _find_info(data[key])
                if found is not None:
                    return found
    return None
