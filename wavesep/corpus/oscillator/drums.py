"""The ``drums`` part of the oscillator renderer: a kit synthesised per song, played from a groove
with fills, ghost notes and humanisation."""

from __future__ import annotations

import numpy as np
from scipy import signal

from wavesep.corpus.oscillator.dsp import _add_room, _butter, _pan, _place, _r, _sin_cycles


_GROOVES = ("rock", "four_on_floor", "half_time", "breakbeat", "shuffle")


# ------------------------------------------------------------------------------- drums


def _drum_kit(rng: np.random.Generator, sr: int) -> dict:
    """A few variants of each drum sound for this song: name -> list of float32 (n,) buffers."""

    def t_axis(seconds):
        return np.arange(int(seconds * sr), dtype=np.float32) * np.float32(1.0 / sr)

    def noise(length):
        return rng.standard_normal(length, dtype=np.float32)

    def normalised(x):
        return (x / (np.max(np.abs(x)) + 1e-9)).astype(np.float32)

    kit = {}
    f_top, f_end = rng.uniform(110, 190), rng.uniform(42, 62)
    sweep_tau, decay = rng.uniform(0.02, 0.06), rng.uniform(0.12, 0.3)
    drive = rng.uniform(1.0, 3.0)
    kicks = []
    for _ in range(2):
        t = t_axis(min(0.7, 5 * decay)).astype(np.float64)
        f0 = f_top * rng.uniform(0.95, 1.05)
        # Closed-form phase of an exponential pitch sweep from f0 down to f_end.
        phase = f_end * t + (f0 - f_end) * sweep_tau * (1 - np.exp(-t / sweep_tau))
        body = _sin_cycles(phase) * np.exp(-t / decay).astype(np.float32)
        click = signal.sosfilt(_butter("low", 5000, sr), noise(t.size)) * np.exp(-t / 0.003)
        kicks.append(normalised(np.tanh(drive * (body + 0.25 * click.astype(np.float32)))))
    kit["kick"] = kicks

    clap = rng.random() < 0.3
    snares = []
    tone_f = rng.uniform(160, 240)
    snare_decay = rng.uniform(0.06, 0.16)
    for _ in range(3):
        t = t_axis(0.45)
        if clap:
            env = sum(np.where(t >= d, np.exp(-(t - d) / np.float32(0.006)), 0)
                      for d in (0.0, 0.011, 0.022))
            env = env + 0.6 * np.where(t >= 0.03, np.exp(-(t - 0.03) / np.float32(snare_decay)), 0)
            x = signal.sosfilt(_butter("band", (900, 3500), sr), noise(t.size)) * env
        else:
            t64 = t.astype(np.float64)
            tone = (_sin_cycles(tone_f * t64) * np.exp(-t / np.float32(0.05))
                    + 0.5 * _sin_cycles(1.8 * tone_f * t64) * np.exp(-t / np.float32(0.035)))
            rattle = signal.sosfilt(_butter("band", (1200, 9000), sr), noise(t.size))
            x = rng.uniform(0.3, 0.7) * tone + 1.5 * rattle * np.exp(-t / np.float32(snare_decay))
        snares.append(normalised(x))
    kit["snare"] = snares

    # Cymbals: noise plus the six detuned square waves of the classic analogue hi-hat.
    metal_f = np.array([205.3, 304.4, 369.6, 522.7, 540.0, 800.0]) * rng.uniform(1.5, 2.5)
    hp = _butter("high", min(7000.0, 0.4 * sr), sr, order=4)

    def cymbal(seconds, tau):
        t = t_axis(seconds)
        t64 = t.astype(np.float64)
        metal = sum(np.sign(_sin_cycles(f * t64 + rng.random())) for f in metal_f)
        x = signal.sosfilt(hp, 0.6 * noise(t.size) + 0.15 * metal) * np.exp(-t / np.float32(tau))
        return normalised(x)

    closed_tau = rng.uniform(0.012, 0.04)
    kit["hat"] = [cymbal(0.15, closed_tau) for _ in range(3)]
    kit["open_hat"] = [cymbal(0.6, rng.uniform(0.12, 0.25))]
    kit["crash"] = [cymbal(2.0, rng.uniform(0.5, 0.9))]
    toms = []
    for f in sorted(rng.uniform(90, 260, size=3)):
        t = t_axis(0.5).astype(np.float64)
        phase = 0.8 * f * t + 0.2 * f * 0.04 * (1 - np.exp(-t / 0.04))
        toms.append(normalised(_sin_cycles(phase) * np.exp(-t / rng.uniform(0.12, 0.25))))
    kit["tom"] = toms
    return kit


def _groove(name: str, steps: int, rng: np.random.Generator) -> list:
    """One bar of (step, drum, velocity) on a 16th-note grid of `steps` steps."""
    hits = []
    if name == "four_on_floor":
        hits += [(s, "kick", 1.0) for s in range(0, steps, 4)]
        hits += [(s, "snare", 0.9) for s in range(4, steps, 8)]
        hits += [(s, "open_hat" if rng.random() < 0.6 else "hat", 0.7) for s in range(2, steps, 4)]
    elif name == "half_time":
        hits += [(0, "kick", 1.0), (steps // 2 + 2, "kick", 0.8)]
        hits += [(steps // 2, "snare", 1.0)]
        hits += [(s, "hat", 0.6 + 0.2 * (s % 4 == 0)) for s in range(0, steps, 2)]
    elif name == "breakbeat":
        hits += [(0, "kick", 1.0), (10, "kick", 0.85), (11, "kick", 0.6)]
        hits += [(4, "snare", 1.0), (12, "snare", 1.0)]
        hits += [(s, "hat", 0.5 + 0.3 * (s % 2 == 0)) for s in range(steps)]
    else:  # rock and shuffle share the pattern; shuffle swings the off-beat 8ths
        hits += [(0, "kick", 1.0), (steps // 2, "kick", 0.9)]
        hits += [(s, "snare", 1.0) for s in range(4, steps, 8)]
        hits += [(s, "hat", 0.55 + 0.25 * (s % 4 == 0)) for s in range(0, steps, 2)]
    return [h for h in hits if h[0] < steps]


def _render_drums(song: dict, rng: np.random.Generator, sr: int, n: int) -> tuple:
    """Drum kit playing the song's groove, (2, T) float32, and its info."""
    groove = str(rng.choice(_GROOVES, p=[0.35, 0.2, 0.15, 0.15, 0.15]))
    swing = song["swing"] if groove != "shuffle" else max(song["swing"], 0.25)
    kit = _drum_kit(rng, sr)
    steps = song["beats_per_bar"] * 4
    step_s = song["beat"] / 4
    pans = {"kick": 0.0, "snare": float(rng.uniform(-0.1, 0.1)),
            "hat": float(rng.uniform(-0.5, 0.5)), "crash": float(rng.uniform(-0.6, 0.6)),
            "tom0": 0.0, "tom1": 0.0, "tom2": 0.0}
    for k, p in enumerate(np.linspace(-0.5, 0.5, 3) * rng.choice([-1, 1])):
        pans[f"tom{k}"] = float(p)
    tracks = {name: np.zeros(n, dtype=np.float32) for name in pans}
    section_starts = {s["first_bar"] for s in song["sections"]}
    events = 0
    for b in range(song["n_bars"]):
        if not song["drum_bars"][b]:
            continue
        hits = _groove(groove, steps, rng)
        # Variation: extra kicks, ghost snares, an open hat, a fill before a section change.
        hits += [(s, "kick", 0.7) for s in range(1, steps) if rng.random() < 0.05]
        hits += [(s, "snare", 0.25) for s in range(1, steps, 2) if rng.random() < 0.08]
        if rng.random() < 0.3:
            hits.append((steps - 2, "open_hat", 0.7))
        before_change = (b + 1) in section_starts or b == song["n_bars"] - 1
        if before_change and rng.random() < 0.6:
            fill_from = steps - 4 * int(rng.integers(1, 3))
            hits = [h for h in hits if h[0] < fill_from or h[1] == "kick"]
            for s in range(fill_from, steps, int(rng.choice([1, 2]))):
                drum = str(rng.choice(["snare", "tom0", "tom1", "tom2"]))
                hits.append((s, drum, 0.6 + 0.4 * rng.random()))
        if b in section_starts and b > 0 and rng.random() < 0.7:
            hits.append((0, "crash", 0.9))
        t_bar = b * song["bar"]
        for s, drum, vel in hits:
            t = t_bar + s * step_s + rng.normal(0, 0.004)
            if s % 4 == 2:
                t += swing * 2 * step_s
            vel = float(np.clip(vel * rng.uniform(0.85, 1.1), 0.05, 1.2))
            if drum.startswith("tom"):
                buf = kit["tom"][int(drum[3])]
            else:
                variants = kit[drum]
                buf = variants[int(rng.integers(len(variants)))]
            target = "hat" if drum == "open_hat" else drum
            _place(tracks[target], buf * np.float32(vel), int(round(t * sr)))
            events += 1
    gains = {"kick": rng.uniform(0.8, 1.0), "snare": rng.uniform(0.6, 0.9),
             "hat": rng.uniform(0.2, 0.4), "crash": rng.uniform(0.15, 0.3)}
    out = np.zeros((2, n), dtype=np.float32)
    for name, track in tracks.items():
        out += _pan(track * np.float32(gains.get(name, 0.6)), pans[name])
    rt60 = float(rng.uniform(0.2, 0.7))
    wet_db = float(rng.uniform(-20, -10))
    out = _add_room(out, sr, rng, rt60, wet_db)
    info = {"groove": groove, "swing": _r(swing), "events": events, "room_rt60": _r(rt60),
            "bars_playing": [int(b) for b in np.flatnonzero(song["drum_bars"])]}
    return out, info
