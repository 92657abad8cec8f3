"""Render note lists with sampled instruments through libfluidsynth (ctypes, float output).

A thin binding of the dozen libfluidsynth calls the sampled renderer needs. It renders
straight into float32 numpy buffers (``fluid_synth_write_float``), so no 16-bit rounding
happens before the corpus writer quantises the final mix, and no MIDI file is written.

Shapes: every rendered track is float32 ``(T, 2)``, T samples at ``sample_rate`` Hz,
left/right. Times in note lists are seconds from the start of the song.

FluidSynth's own reverb and chorus are switched off: the room is added later per stem with
a seeded impulse response, so the same seed always gives the same audio, whatever was
rendered before in the same process.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from dataclasses import dataclass

import numpy as np

from wavesep.errors import DependencyError

GM_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
AVL_DRUM_SOUNDFONTS = {
    "avl_black_pearl": "/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2",
    "avl_red_zeppelin": "/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2",
}
APT_LINE = "apt-get install -y fluidsynth fluid-soundfont-gm avldrums.lv2-soundfont"

# libfluidsynth renders in 64-sample blocks; rendering a long song in one call per event
# gap keeps the ctypes overhead negligible.
_MAX_CHUNK = 1 << 16


@dataclass(frozen=True)
class NoteEvent:
    """One note: ``onset`` and ``duration`` in seconds, MIDI ``pitch`` 0-127, ``velocity`` 1-127."""

    onset: float
    duration: float
    pitch: int
    velocity: int


@dataclass(frozen=True)
class Instrument:
    """A soundfont preset playing a list of notes on its own MIDI channel.

    ``soundfont`` is a path; ``bank``/``program`` select the preset (GM drums: bank 128).
    ``pan`` is -1 (left) .. +1 (right), applied by FluidSynth (CC 10) before the room.
    """

    soundfont: str
    bank: int
    program: int
    notes: tuple
    pan: float = 0.0
    volume: int = 100


_LIB = None


def _library():
    """Load libfluidsynth once and declare the prototypes used here."""
    global _LIB
    if _LIB is not None:
        return _LIB
    name = ctypes.util.find_library("fluidsynth") or "libfluidsynth.so.3"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise DependencyError(
            f"libfluidsynth (the FluidSynth library) is not installed ({exc}); "
            f"install it with: {APT_LINE}") from exc
    vp, ci, cd, cs = ctypes.c_void_p, ctypes.c_int, ctypes.c_double, ctypes.c_char_p
    protos = {
        "new_fluid_settings": (vp, []),
        "delete_fluid_settings": (None, [vp]),
        "fluid_settings_setnum": (ci, [vp, cs, cd]),
        "fluid_settings_setint": (ci, [vp, cs, ci]),
        "new_fluid_synth": (vp, [vp]),
        "delete_fluid_synth": (None, [vp]),
        "fluid_synth_sfload": (ci, [vp, cs, ci]),
        "fluid_synth_program_select": (ci, [vp, ci, ci, ci, ci]),
        "fluid_synth_noteon": (ci, [vp, ci, ci, ci]),
        "fluid_synth_noteoff": (ci, [vp, ci, ci]),
        "fluid_synth_cc": (ci, [vp, ci, ci, ci]),
        "fluid_synth_write_float": (ci, [vp, ci, vp, ci, ci, vp, ci, ci]),
        "fluid_synth_get_sfont_by_id": (vp, [vp, ci]),
        "fluid_sfont_get_preset": (vp, [vp, ci, ci]),
        "fluid_preset_get_name": (cs, [vp]),
        "fluid_set_log_function": (vp, [ci, vp, vp]),
    }
    for fname, (restype, argtypes) in protos.items():
        fn = getattr(lib, fname)
        fn.restype = restype
        fn.argtypes = argtypes
    # FluidSynth prints a warning per unused SoundFont generator; silence everything but errors.
    for level in (2, 3, 4):  # FLUID_WARN, FLUID_INFO, FLUID_DBG
        lib.fluid_set_log_function(level, None, None)
    _LIB = lib
    return lib


def check_available() -> None:
    """Raise DependencyError unless libfluidsynth and the GM and drum soundfonts are installed."""
    _library()
    missing = [p for p in (GM_SOUNDFONT, *AVL_DRUM_SOUNDFONTS.values()) if not os.path.isfile(p)]
    if missing:
        raise DependencyError(
            f"soundfont file(s) {', '.join(missing)} not found; install them with: {APT_LINE}")


class _Synth:
    """One FluidSynth instance and the soundfonts it has loaded.

    A fresh instance renders each track: a reused one keeps per-channel state that changes
    the next render slightly, which would break "same seed, same audio". Dynamic sample
    loading reads only the samples of the presets in use, so a fresh instance is cheap.
    """

    def __init__(self, sample_rate: int):
        lib = _library()
        self.lib = lib
        self.settings = lib.new_fluid_settings()
        lib.fluid_settings_setnum(self.settings, b"synth.sample-rate", float(sample_rate))
        lib.fluid_settings_setnum(self.settings, b"synth.gain", 0.5)
        lib.fluid_settings_setint(self.settings, b"synth.reverb.active", 0)
        lib.fluid_settings_setint(self.settings, b"synth.chorus.active", 0)
        lib.fluid_settings_setint(self.settings, b"synth.polyphony", 512)
        lib.fluid_settings_setint(self.settings, b"synth.midi-channels", 16)
        lib.fluid_settings_setint(self.settings, b"synth.dynamic-sample-loading", 1)
        self.synth = lib.new_fluid_synth(self.settings)
        if not self.synth:
            raise DependencyError("libfluidsynth could not create a synthesizer; "
                                  f"reinstall it with: {APT_LINE}")
        self.fonts: dict[str, int] = {}

    def write(self, left: int, right: int, offset: int, n: int) -> None:
        self.lib.fluid_synth_write_float(self.synth, n, left, offset, 1, right, offset, 1)

    def close(self) -> None:
        if self.synth:
            self.lib.delete_fluid_synth(self.synth)
            self.lib.delete_fluid_settings(self.settings)
            self.synth = self.settings = None

    def font_id(self, path: str) -> int:
        if path not in self.fonts:
            if not os.path.isfile(path):
                raise DependencyError(f"soundfont {path} not found; install it with: {APT_LINE}")
            sfid = self.lib.fluid_synth_sfload(self.synth, path.encode(), 0)
            if sfid < 0:
                raise DependencyError(f"libfluidsynth could not load soundfont {path}; "
                                      f"reinstall it with: {APT_LINE}")
            self.fonts[path] = sfid
        return self.fonts[path]


def preset_name(soundfont: str, bank: int, program: int, sample_rate: int = 44100) -> str | None:
    """Name of a soundfont preset, or None when the soundfont has no such bank/program."""
    s = _Synth(sample_rate)
    try:
        sfont = s.lib.fluid_synth_get_sfont_by_id(s.synth, s.font_id(soundfont))
        preset = s.lib.fluid_sfont_get_preset(sfont, bank, program)
        return s.lib.fluid_preset_get_name(preset).decode("latin-1") if preset else None
    finally:
        s.close()


def render(instruments: list[Instrument], num_samples: int, sample_rate: int) -> np.ndarray:
    """Render up to 16 instruments together into one stereo track.

    Args:
        instruments: each on its own MIDI channel, in list order (channel 9 included: presets
            are selected explicitly, so GM's drum channel has no special meaning here).
        num_samples: length T of the output; notes are cut at the end.
        sample_rate: Hz.

    Returns:
        float32 array (T, 2), full-scale 1.0.
    """
    if len(instruments) > 16:
        raise ValueError(f"at most 16 instruments per render, got {len(instruments)}")
    s = _Synth(sample_rate)
    try:
        return _render(s, instruments, num_samples, sample_rate)
    finally:
        s.close()


def _render(s: _Synth, instruments: list, num_samples: int, sample_rate: int) -> np.ndarray:
    lib, syn = s.lib, s.synth
    events = []  # (sample, order, chan, pitch, velocity); note-offs (order 0) before note-ons
    for chan, inst in enumerate(instruments):
        sfid = s.font_id(inst.soundfont)
        if lib.fluid_synth_program_select(syn, chan, sfid, inst.bank, inst.program) != 0:
            raise ValueError(f"soundfont {inst.soundfont} has no preset bank {inst.bank} "
                             f"program {inst.program}")
        lib.fluid_synth_cc(syn, chan, 7, int(np.clip(inst.volume, 0, 127)))
        lib.fluid_synth_cc(syn, chan, 10, int(np.clip(round(64 + 63 * inst.pan), 0, 127)))
        for n in inst.notes:
            on = int(round(n.onset * sample_rate))
            off = int(round((n.onset + n.duration) * sample_rate))
            if on >= num_samples or off <= on:
                continue
            events.append((on, 1, chan, int(n.pitch), int(np.clip(n.velocity, 1, 127))))
            events.append((off, 0, chan, int(n.pitch), 0))
    events.sort()
    out = np.zeros((2, num_samples), dtype=np.float32)
    left, right = out[0].ctypes.data, out[1].ctypes.data
    pos = 0

    def advance(until: int) -> None:
        nonlocal pos
        until = min(until, num_samples)
        while pos < until:
            n = min(until - pos, _MAX_CHUNK)
            s.write(left, right, pos, n)
            pos += n

    for sample, order, chan, pitch, velocity in events:
        advance(sample)
        if pos >= num_samples:
            break
        if order:
            lib.fluid_synth_noteon(syn, chan, pitch, velocity)
        else:
            lib.fluid_synth_noteoff(syn, chan, pitch)
    advance(num_samples)
    return np.ascontiguousarray(out.T)
