"""Accompaniment from MMA (Musical MIDI Accompaniment) grooves: drums, bass, chords.

MMA turns a chord chart into a MIDI file with one track per groove instrument (Drum, Bass,
Walk, Chord, Arpeggio, Scale, ...). This module writes the chart, runs ``mma`` with a fixed
random seed (MMA humanises timing and velocity with Python's ``random``) and reads the
notes back per track, in MMA beats. The caller maps beats to seconds, so MIDI tempo
handling never matters.

Grooves are grouped by metre: "duple" (4 quarter-note beats a bar), "triple" (3 beats) and
"compound" (a 6/8 bar, beats as MMA defines them for that groove).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass

from wavesep.errors import DependencyError

MMA_LIB = "/usr/share/mma/lib/stdlib"
APT_LINE = "apt-get install -y mma && mma -G"
PIP_LINE = "pip install mido"


@dataclass(frozen=True)
class Groove:
    """An MMA groove: ``name``, ``meter`` ("duple"/"triple"/"compound"), ``beats`` per bar."""

    name: str
    meter: str
    beats: int


@dataclass(frozen=True)
class TrackNotes:
    """Notes of one MMA track: (onset_beats, duration_beats, pitch, velocity) tuples."""

    name: str
    program: int
    volume: int
    drums: bool
    notes: tuple


def check_available() -> None:
    """Raise DependencyError unless the mma program, its groove database and mido exist."""
    if shutil.which("mma") is None:
        raise DependencyError(f"the program mma (Musical MIDI Accompaniment) is not installed; "
                              f"install it with: {APT_LINE}")
    if not os.path.isfile(os.path.join(MMA_LIB, ".mmaDB")):
        raise DependencyError(f"MMA's groove database {MMA_LIB}/.mmaDB is missing; "
                              "build it once, as root, with: mma -G")
    if importlib.util.find_spec("mido") is None:
        raise DependencyError(f"the Python package mido (MIDI files) is not installed; "
                              f"install it with: {PIP_LINE}")


@functools.lru_cache(maxsize=None)
def grooves() -> dict:
    """Usable grooves by metre, read from MMA's standard library: {meter: [Groove, ...]}.

    Intros, endings, fills and metronomes are left out: they are written for a few bars, not
    to be looped through a song.
    """
    out = {"duple": [], "triple": [], "compound": []}
    if not os.path.isdir(MMA_LIB):
        return out
    skip_files = ("metronome", "none")
    for fname in sorted(os.listdir(MMA_LIB)):
        if not fname.endswith(".mma") or fname.startswith(skip_files):
            continue
        time, sig = None, None
        with open(os.path.join(MMA_LIB, fname), encoding="latin-1") as fh:
            for line in fh:
                tok = line.split("//")[0].split()
                if not tok:
                    continue
                key = tok[0].lower()
                if key == "time" and len(tok) > 1 and tok[1].isdigit():
                    time = int(tok[1])
                elif key == "timesig" and len(tok) > 2:
                    sig = (tok[1], tok[2])
                elif key == "defgroove" and len(tok) > 1:
                    name = tok[1]
                    low = name.lower()
                    if "end" in low or "fill" in low or "intro" in low or "-" in name:
                        continue
                    if sig == ("6", "8") and time in (2, 4, 6):
                        out["compound"].append(Groove(name, "compound", time))
                    elif time == 3 and sig in (None, ("3", "4")):
                        out["triple"].append(Groove(name, "triple", 3))
                    elif time == 4 and sig in (None, ("4", "4")):
                        out["duple"].append(Groove(name, "duple", 4))
    return out


def render_chart(groove: Groove, chart: list, tempo_bpm: float, seed: int) -> list:
    """Run MMA on a chord chart.

    Args:
        groove: the groove to play every bar with.
        chart: one list of ``groove.beats`` chord symbols (MMA spelling, e.g. "F#m7") per bar.
        tempo_bpm: MMA beats per minute (only MMA's own swing/humanising depends on it).
        seed: MMA's random seed, so the same chart gives the same MIDI.

    Returns:
        list of TrackNotes with times in MMA beats from the start of the chart.

    Raises:
        DependencyError: mma is missing or fails to run.
    """
    import mido

    lines = [f"Tempo {max(30, min(300, int(round(tempo_bpm))))}", f"RndSeed {int(seed)}",
             f"Groove {groove.name}"]
    for i, bar in enumerate(chart, start=1):
        lines.append(f"{i} " + " ".join(bar))
    with tempfile.TemporaryDirectory(prefix="wavesep_mma_") as tmp:
        src, mid = os.path.join(tmp, "song.mma"), os.path.join(tmp, "song.mid")
        with open(src, "w") as fh:
            fh.write("\n".join(lines) + "\n")
        proc = subprocess.run(["mma", "-f", mid, src], cwd=tmp, capture_output=True, text=True,
                              timeout=120)
        if proc.returncode != 0 or not os.path.isfile(mid):
            raise DependencyError(f"mma failed on groove {groove.name} "
                                  f"({proc.stdout.strip()[-300:]} {proc.stderr.strip()[-300:]}); "
                                  f"reinstall it with: {APT_LINE}")
        midi = mido.MidiFile(mid)
    tpb = float(midi.ticks_per_beat)
    tracks = []
    for track in midi.tracks:
        tick, program, volume, drums = 0, 0, 100, False
        pending: dict = {}
        notes = []
        for msg in track:
            tick += msg.time
            if msg.type == "program_change":
                program = msg.program
            elif msg.type == "control_change" and msg.control == 7:
                volume = msg.value
            elif msg.type in ("note_on", "note_off"):
                drums = drums or msg.channel == 9
                key = (msg.channel, msg.note)
                if msg.type == "note_on" and msg.velocity > 0:
                    if key in pending:  # retrigger: close the sounding note first
                        start, vel = pending.pop(key)
                        notes.append((start / tpb, max(tick - start, 1) / tpb, msg.note, vel))
                    pending[key] = (tick, msg.velocity)
                elif key in pending:
                    start, vel = pending.pop(key)
                    notes.append((start / tpb, max(tick - start, 1) / tpb, msg.note, vel))
        if notes:
            notes.sort()
            tracks.append(TrackNotes(track.name, program, volume, drums, tuple(notes)))
    return tracks
