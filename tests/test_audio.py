"""Tests of wavesep.audio: files in and out, resampling, channel conversion.

Every signal is generated here (sines in closed form or seeded noise) and written to tmp_path.
Files are also written/read with soundfile or the ffmpeg binary directly, so that a mistake
shared by read() and write() cannot hide behind a round trip.
"""

import math
import os
import shutil
import stat
import subprocess
from fractions import Fraction

import numpy as np
import pytest
import soundfile
import torch
from scipy.signal import resample_poly

from wavesep import audio
from wavesep.audio import reading, resampling, writing
from wavesep.errors import AudioError, DependencyError

HAVE_FFMPEG = shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None
needs_ffmpeg = pytest.mark.skipif(not HAVE_FFMPEG, reason="ffmpeg/ffprobe not on PATH")


def sine(freq, sample_rate, frames, amplitude=0.5, phase=0.0, dtype=np.float64):
    n = np.arange(frames)
    return (amplitude * np.sin(2 * np.pi * freq * n / sample_rate + phase)).astype(dtype)


def stereo_test_signal(frames=4000, sample_rate=8000):
    """(2, T): left and right differ so that a channel swap or transpose is caught."""
    return np.stack([sine(440, sample_rate, frames, 0.5), sine(1000, sample_rate, frames, 0.25)])


def dominant_frequency(x, sample_rate):
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.argmax(spectrum) * sample_rate / len(x)


def sine_fit(x, freq, sample_rate, offset=0, with_phase=False):
    """Amplitude and phase (rad) of the best fit a*sin(2 pi f n / sr + phase), n from offset."""
    n = np.arange(offset, offset + len(x))
    basis = np.stack([np.sin(2 * np.pi * freq * n / sample_rate),
                      np.cos(2 * np.pi * freq * n / sample_rate)], axis=1)
    (s, c), *_ = np.linalg.lstsq(basis, x, rcond=None)
    if with_phase:
        return float(np.hypot(s, c)), float(np.arctan2(c, s))
    return float(np.hypot(s, c))


def no_ffmpeg(monkeypatch, tmp_path):
    empty = tmp_path / "empty_bin"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("ffmpeg") is None


def run_ffmpeg(*args):
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


# ----------------------------------------------------------------------------------------------
# Round trips and formats


@pytest.mark.parametrize(
    "name, subtype, tolerance",
    [
        ("a.wav", "PCM_16", 1 / 2**15),
        ("a.wav", "PCM_24", 1 / 2**23),
        ("a.wav", "FLOAT", 0.0),
        ("a.flac", "PCM_16", 1 / 2**15),
        ("a.flac", "PCM_24", 1 / 2**23),
    ],
)
def test_round_trip(tmp_path, name, subtype, tolerance):
    x = torch.from_numpy(stereo_test_signal()).float()
    path = audio.write(tmp_path / name, x, 8000, subtype=subtype)
    y, sr = audio.read(path)
    assert sr == 8000 and y.dtype == torch.float32 and y.shape == x.shape
    assert (y - x).abs().max() <= tolerance
    # Independent reader: the file itself must hold (T, C) frames with left first.
    frames, sr_sf = soundfile.read(str(path), dtype="float32")
    assert sr_sf == 8000 and frames.shape == (x.shape[1], 2)
    np.testing.assert_array_equal(frames.T, y.numpy())
    assert soundfile.info(str(path)).subtype == subtype


@pytest.mark.parametrize("subtype", ["PCM_U8", "PCM_16", "PCM_24", "PCM_32"])
def test_integer_files_read_on_full_scale(tmp_path, subtype):
    # Multiples of 1/128 are exact in every integer width, and -1.0 is the most negative code.
    values = np.array([-1.0, -0.5, -1 / 128, 0.0, 1 / 128, 0.5, 127 / 128])
    path = tmp_path / "int.wav"
    soundfile.write(str(path), values, 8000, subtype=subtype)
    y, sr = audio.read(path)
    assert sr == 8000 and y.shape == (1, len(values))
    np.testing.assert_array_equal(y[0].numpy(), values.astype(np.float32))
    assert y.min() >= -1 and y.max() <= 1


def test_read_float64(tmp_path):
    x = np.random.default_rng(0).uniform(-1, 1, (3, 100))
    path = tmp_path / "d.wav"
    soundfile.write(str(path), x.T, 8000, subtype="DOUBLE")
    y, _ = audio.read(path, dtype=torch.float64)
    assert y.dtype == torch.float64
    np.testing.assert_array_equal(y.numpy(), x)


@pytest.mark.skipif("OGG" not in soundfile.available_formats(), reason="libsndfile without OGG")
def test_read_ogg_vorbis(tmp_path):
    path = tmp_path / "a.ogg"
    soundfile.write(str(path), stereo_test_signal(16000, 16000).T, 16000, format="OGG",
                    subtype="VORBIS")
    y, sr = audio.read(path)
    assert sr == 16000 and y.shape[0] == 2 and abs(y.shape[1] - 16000) <= 1024
    assert dominant_frequency(y[0].numpy(), sr) == pytest.approx(440, abs=2)
    assert dominant_frequency(y[1].numpy(), sr) == pytest.approx(1000, abs=2)
    assert sine_fit(y[0, 2000:14000].numpy(), 440, sr, 2000) == pytest.approx(0.5, abs=0.02)


def test_read_mp3(tmp_path):
    path = tmp_path / "a.mp3"
    try:
        soundfile.write(str(path), stereo_test_signal(44100, 44100).T, 44100, format="MP3",
                        subtype="MPEG_LAYER_III")
    except (soundfile.SoundFileError, RuntimeError, TypeError, ValueError) as exc:
        pytest.skip(f"this libsndfile cannot write MP3: {exc}")
    y, sr = audio.read(path)
    assert sr == 44100 and y.shape[0] == 2 and abs(y.shape[1] - 44100) <= 4 * 1152
    assert dominant_frequency(y[0].numpy(), sr) == pytest.approx(440, abs=2)
    assert dominant_frequency(y[1].numpy(), sr) == pytest.approx(1000, abs=2)
    assert audio.info(path).backend == "soundfile"


def test_partial_read_soundfile(tmp_path):
    x = np.random.default_rng(1).uniform(-1, 1, (2, 1000)).astype(np.float32)
    path = audio.write(tmp_path / "p.wav", torch.from_numpy(x), 8000, subtype="FLOAT")
    y, _ = audio.read(path, start=100, frames=250)
    np.testing.assert_array_equal(y.numpy(), x[:, 100:350])
    tail, _ = audio.read(path, start=900, frames=500)  # runs past the end: what is there
    np.testing.assert_array_equal(tail.numpy(), x[:, 900:])
    with pytest.raises(AudioError, match="past the end"):
        audio.read(path, start=1000)
    with pytest.raises(AudioError, match="frames"):
        audio.read(path, frames=0)


def test_read_resamples_and_adapts_channels(tmp_path):
    path = tmp_path / "m.wav"
    soundfile.write(str(path), sine(440, 22050, 22050), 22050, subtype="FLOAT")
    y, sr = audio.read(path, sample_rate=44100, channels=2)
    assert sr == 44100 and y.shape == (2, 44100)
    assert torch.equal(y[0], y[1])
    assert sine_fit(y[0, 5000:40000].numpy(), 440, 44100, 5000) == pytest.approx(0.5, abs=1e-4)
    mono, sr = audio.read(path, channels=1)
    assert sr == 22050 and mono.shape == (1, 22050)


def test_read_refuses_multichannel_unless_policy(tmp_path):
    x = np.random.default_rng(2).uniform(-1, 1, (6, 50))
    path = tmp_path / "six.wav"
    soundfile.write(str(path), x.T, 8000, subtype="DOUBLE")
    with pytest.raises(AudioError, match="six.wav.*6 channels.*downmix"):
        audio.read(path, channels=2)
    y, _ = audio.read(path, channels=2, channel_policy="first", dtype=torch.float64)
    np.testing.assert_array_equal(y.numpy(), x[:2])
    y, _ = audio.read(path, channels=2, channel_policy="downmix", dtype=torch.float64)
    np.testing.assert_allclose(y.numpy(), np.repeat(x.mean(0, keepdims=True), 2, 0), atol=1e-12)


def test_info_wav(tmp_path):
    path = tmp_path / "i.wav"
    soundfile.write(str(path), np.zeros((12000, 3)), 48000, subtype="PCM_24")
    meta = audio.info(path)
    assert (meta.sample_rate, meta.channels, meta.frames) == (48000, 3, 12000)
    assert meta.frames_exact and meta.streams == 1 and meta.backend == "soundfile"
    assert meta.duration_seconds == pytest.approx(0.25)
    assert (meta.format, meta.subtype) == ("WAV", "PCM_24")


# ----------------------------------------------------------------------------------------------
# ffmpeg


@needs_ffmpeg
def test_ffmpeg_lossless_container_is_exact(tmp_path):
    # PCM float in Matroska: decoded only by ffmpeg, and bit-exact, so equality is testable.
    x = np.random.default_rng(3).uniform(-1, 1, (3, 3000)).astype(np.float32)
    src = tmp_path / "src.wav"
    soundfile.write(str(src), x.T, 16000, subtype="FLOAT")
    path = tmp_path / "a.mka"
    run_ffmpeg("-i", str(src), "-c:a", "pcm_f32le", str(path))
    y, sr = audio.read(path)
    assert sr == 16000
    np.testing.assert_array_equal(y.numpy(), x)
    part, _ = audio.read(path, start=1234, frames=321)
    np.testing.assert_array_equal(part.numpy(), x[:, 1234:1555])
    meta = audio.info(path)
    assert (meta.sample_rate, meta.channels) == (16000, 3)
    assert (meta.backend, meta.subtype) == ("ffmpeg", "pcm_f32le")
    # Matroska stores durations in milliseconds: 3000 frames at 16 kHz read as 0.188 s.
    assert abs(meta.frames - 3000) <= 16 and not meta.frames_exact
    # ...which must not cut real samples off the decoded audio.
    odd = x[:, :3010]
    soundfile.write(str(src), odd.T, 16000, subtype="FLOAT")
    run_ffmpeg("-i", str(src), "-c:a", "pcm_f32le", str(path))
    np.testing.assert_array_equal(audio.read(path)[0].numpy(), odd)


@needs_ffmpeg
def test_ffmpeg_m4a_aac(tmp_path):
    src = tmp_path / "src.wav"
    soundfile.write(str(src), stereo_test_signal(44100, 44100).T, 44100, subtype="FLOAT")
    path = tmp_path / "a.m4a"
    run_ffmpeg("-i", str(src), "-c:a", "aac", "-b:a", "192k", str(path))
    y, sr = audio.read(path)
    meta = audio.info(path)
    assert sr == meta.sample_rate == 44100 and meta.channels == 2 and meta.backend == "ffmpeg"
    # The container's duration trims the last frame's padding: the original length comes back.
    assert y.shape == (2, 44100) and meta.frames == 44100 and meta.frames_exact
    # Encoder delay removed: the sines keep their amplitude and their phase on the original
    # sample grid (a shift of one sample would turn the 1 kHz phase by 0.14 rad).
    amp, phase = sine_fit(y[0, 4000:40000].numpy(), 440, sr, 4000, with_phase=True)
    assert amp == pytest.approx(0.5, abs=0.02) and abs(phase) < 0.03
    amp, phase = sine_fit(y[1, 4000:40000].numpy(), 1000, sr, 4000, with_phase=True)
    assert amp == pytest.approx(0.25, abs=0.02) and abs(phase) < 0.05


@needs_ffmpeg
def test_ffmpeg_multistream_like_stem_mp4(tmp_path):
    rng = np.random.default_rng(4)
    streams = [rng.uniform(-1, 1, (2, 800)).astype(np.float32) for _ in range(3)]
    inputs = []
    for i, s in enumerate(streams):
        src = tmp_path / f"s{i}.wav"
        soundfile.write(str(src), s.T, 8000, subtype="FLOAT")
        inputs += ["-i", str(src)]
    path = tmp_path / "stems.mka"
    maps = [arg for i in range(3) for arg in ("-map", str(i))]
    run_ffmpeg(*inputs, *maps, "-c:a", "pcm_f32le", str(path))
    assert audio.info(path).streams == 3
    for i, s in enumerate(streams):
        y, _ = audio.read(path, stream=i)
        np.testing.assert_array_equal(y.numpy(), s)
    with pytest.raises(AudioError, match="no audio stream number 3"):
        audio.read(path, stream=3)


@needs_ffmpeg
def test_ffmpeg_fallback_for_soundfile_extension(tmp_path):
    # An AAC stream misnamed .wav: soundfile refuses it, ffmpeg decodes it.
    src = tmp_path / "src.wav"
    soundfile.write(str(src), sine(440, 8000, 8000)[:, None], 8000, subtype="FLOAT")
    path = tmp_path / "actually_adts.wav"
    run_ffmpeg("-i", str(src), "-c:a", "aac", "-f", "adts", str(path))
    with pytest.raises(soundfile.SoundFileError):
        soundfile.info(str(path))
    y, sr = audio.read(path)
    assert sr == 8000 and y.shape[0] == 1
    assert dominant_frequency(y[0].numpy(), sr) == pytest.approx(440, abs=2)


def test_unknown_extension_without_ffmpeg(tmp_path, monkeypatch):
    path = tmp_path / "song.m4a"
    path.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00" + bytes(200))
    no_ffmpeg(monkeypatch, tmp_path)
    for call in (audio.read, audio.info):
        with pytest.raises(audio.MissingFFmpegError) as caught:
            call(path)
        message = str(caught.value)
        assert "song.m4a" in message and "ffmpeg" in message and "apt-get install ffmpeg" in message
        assert isinstance(caught.value, AudioError) and isinstance(caught.value, DependencyError)


def test_unknown_extension_without_ffmpeg_still_sniffs_wav(tmp_path, monkeypatch):
    x = stereo_test_signal(100)
    path = tmp_path / "take.bin"
    soundfile.write(str(path), x.T, 8000, format="WAV", subtype="DOUBLE")
    no_ffmpeg(monkeypatch, tmp_path)
    y, _ = audio.read(path, dtype=torch.float64)
    np.testing.assert_array_equal(y.numpy(), x)


def test_stream_other_than_0_needs_ffmpeg(tmp_path, monkeypatch):
    path = tmp_path / "a.wav"
    soundfile.write(str(path), np.zeros(10), 8000)
    no_ffmpeg(monkeypatch, tmp_path)
    with pytest.raises(audio.MissingFFmpegError, match="stream 1"):
        audio.read(path, stream=1)


# ----------------------------------------------------------------------------------------------
# Read errors


def test_missing_file(tmp_path):
    for call in (audio.read, audio.info):
        with pytest.raises(AudioError, match="not found.*nope.wav"):
            call(tmp_path / "nope.wav")


def test_directory(tmp_path):
    with pytest.raises(AudioError, match="is a directory"):
        audio.read(tmp_path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.touch()
    for call in (audio.read, audio.info):
        with pytest.raises(AudioError, match=r"empty.wav is empty \(0 bytes\)"):
            call(path)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads any file")
def test_permission_denied_real(tmp_path):
    path = tmp_path / "locked.wav"
    soundfile.write(str(path), np.zeros(10), 8000)
    path.chmod(0)
    try:
        with pytest.raises(AudioError, match="permission denied.*locked.wav"):
            audio.read(path)
    finally:
        path.chmod(stat.S_IRUSR | stat.S_IWUSR)


def test_permission_denied_reported(tmp_path, monkeypatch):
    # Root ignores file modes, so the failing open is simulated where audio/reading.py opens the file.
    path = tmp_path / "locked.wav"
    soundfile.write(str(path), np.zeros(10), 8000)

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(reading, "open", refuse, raising=False)
    with pytest.raises(AudioError, match="permission denied reading audio file .*locked.wav"):
        audio.read(path)


@pytest.mark.parametrize("ffmpeg_present", [True, False])
@pytest.mark.parametrize(
    "payload",
    [
        b"RIFF\x24\x00\x00\x00WAVEjunk" + bytes(range(256)) * 4,  # header, then no fmt/data
        bytes(np.random.default_rng(5).integers(0, 256, 3000, dtype=np.uint8)),
    ],
    ids=["bad-chunks", "random-bytes"],
)
def test_corrupt_file(tmp_path, monkeypatch, payload, ffmpeg_present):
    if ffmpeg_present and not HAVE_FFMPEG:
        pytest.skip("ffmpeg not on PATH")
    if not ffmpeg_present:
        no_ffmpeg(monkeypatch, tmp_path)
    path = tmp_path / "broken.wav"
    path.write_bytes(payload)
    expected = "cannot decode audio file .*broken.wav.*corrupt"
    with pytest.raises(AudioError, match=expected) as caught:
        audio.read(path)
    assert "soundfile" in str(caught.value)
    assert not isinstance(caught.value, audio.MissingFFmpegError)
    with pytest.raises(AudioError, match="broken.wav"):
        audio.info(path)


def test_truncated_wav_reads_what_is_there_when_allowed(tmp_path):
    # libsndfile trusts the bytes present over the header's size: a cut file is still usable
    # when asked for (by default it is an error, see test_truncated_wav_is_an_error_naming_the_frames).
    x = stereo_test_signal(1000)
    path = tmp_path / "cut.wav"
    soundfile.write(str(path), x.T, 8000, subtype="PCM_16")
    data = path.read_bytes()
    path.write_bytes(data[: 44 + 4 * 600])
    y, _ = audio.read(path, allow_truncated=True)
    assert y.shape == (2, 600)
    np.testing.assert_allclose(y.numpy(), x[:, :600], atol=1 / 2**15)


def test_zero_length_audio(tmp_path):
    path = tmp_path / "silent.wav"
    soundfile.write(str(path), np.zeros((0, 2)), 8000)
    assert path.stat().st_size > 0
    with pytest.raises(AudioError, match=r"silent.wav contains no audio samples \(0 frames\)"):
        audio.read(path)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_samples(tmp_path, bad):
    x = np.zeros((2, 100), dtype=np.float32)
    x[1, 37] = bad
    path = tmp_path / "nan.wav"
    soundfile.write(str(path), x.T, 8000, subtype="FLOAT")
    expected = r"nan.wav contains 1 NaN or infinite samples \(first at frame 37\)"
    with pytest.raises(AudioError, match=expected):
        audio.read(path)
    y, _ = audio.read(path, check_finite=False)
    assert not torch.isfinite(y[1, 37]) and torch.isfinite(y[0]).all()


def test_bad_read_arguments(tmp_path):
    path = tmp_path / "a.wav"
    soundfile.write(str(path), np.zeros(10), 8000)
    with pytest.raises(AudioError, match="sample_rate"):
        audio.read(path, sample_rate=0)
    with pytest.raises(AudioError, match="dtype"):
        audio.read(path, dtype=torch.int16)
    with pytest.raises(AudioError, match="channel_policy"):
        audio.read(path, channel_policy="average")
    with pytest.raises(AudioError, match="start"):
        audio.read(path, start=-1)
    with pytest.raises(AudioError, match="channels"):
        audio.read(path, channels=0)


# ----------------------------------------------------------------------------------------------
# Resampling


RATE_PAIRS = [(44100, 48000), (48000, 44100), (44100, 22050), (16000, 44100), (8000, 8001)]


@pytest.mark.parametrize("orig_sr, new_sr", RATE_PAIRS)
def test_resample_sine_keeps_frequency_and_amplitude(orig_sr, new_sr):
    freq = 0.3 * min(orig_sr, new_sr)  # well inside the passband of both rates
    frames = orig_sr // 4
    x = torch.from_numpy(sine(freq, orig_sr, frames, amplitude=0.7, phase=0.3))
    y = audio.resample(x, orig_sr, new_sr)
    assert y.dtype == torch.float64
    # The filter has no delay: output n must be the same sine sampled at n / new_sr.
    expected = sine(freq, new_sr, y.shape[-1], amplitude=0.7, phase=0.3)
    edge = int(0.03 * new_sr)  # zeros outside [0, T) disturb the first/last filter half-lengths
    np.testing.assert_allclose(y[edge:-edge].numpy(), expected[edge:-edge], atol=2e-4)


def test_resample_removes_content_above_new_nyquist():
    # 15 kHz cannot exist at 22.05 kHz: it must vanish, not fold back to 7.05 kHz.
    x = torch.from_numpy(sine(15000, 44100, 44100, amplitude=1.0))
    y = audio.resample(x, 44100, 22050).numpy()
    assert np.abs(y[2000:-2000]).max() < 1e-4  # below -80 dB


@pytest.mark.parametrize("frames", [0, 1, 2, 3, 441, 1000, 44101, 99999])
@pytest.mark.parametrize("orig_sr, new_sr", RATE_PAIRS + [(3, 2), (2, 3)])
def test_resample_length_rule(frames, orig_sr, new_sr):
    expected = math.floor(Fraction(frames * new_sr, orig_sr) + Fraction(1, 2))
    assert audio.resampled_length(frames, orig_sr, new_sr) == expected
    if frames <= 1000:
        y = audio.resample(torch.zeros(2, frames), orig_sr, new_sr)
        assert y.shape == (2, expected)


def test_resample_identity_returns_same_values():
    x = torch.randn(2, 100)
    assert audio.resample(x, 44100, 44100) is x


def test_resample_round_trip_band_limited():
    rng = np.random.default_rng(6)
    frames = 44100
    n = np.arange(frames)
    freqs = rng.uniform(50, 9000, 20)  # below 0.9 x 11025 Hz, the passband edge at 22.05 kHz
    phases = rng.uniform(0, 2 * np.pi, 20)
    x = sum(0.04 * np.sin(2 * np.pi * f * n / 44100 + p) for f, p in zip(freqs, phases))
    x = torch.from_numpy(np.stack([x, -0.5 * x])).float()
    down = audio.resample(x, 44100, 22050)
    back = audio.resample(down, 22050, 44100)
    assert down.shape == (2, 22050) and back.shape == x.shape
    inner = slice(3000, -3000)
    err = (back[:, inner] - x[:, inner]).abs().max()
    assert err < 1e-3 * x.abs().max()


def test_resample_blocks_match_one_pass(monkeypatch):
    # Small blocks force many block seams; the result must equal one filter pass over all of it.
    x = np.random.default_rng(7).standard_normal((2, 5000))
    for orig_sr, new_sr in [(44100, 48000), (48000, 44100), (2, 1), (1, 3)]:
        g = math.gcd(orig_sr, new_sr)
        up, down = new_sr // g, orig_sr // g
        whole = resample_poly(x, up, down, axis=-1, window=audio._lowpass_taps(up, down))
        whole = whole[:, : audio.resampled_length(x.shape[1], orig_sr, new_sr)]
        monkeypatch.setattr(resampling, "_BLOCK_FRAMES", 700)
        blocked = audio.resample(torch.from_numpy(x), orig_sr, new_sr).numpy()
        monkeypatch.undo()
        np.testing.assert_allclose(blocked, whole, rtol=0, atol=1e-12)


@pytest.mark.parametrize("orig_sr, new_sr", [(44100, 48000), (48000, 44100), (2, 1), (1, 3)])
def test_resample_reach_bounds_the_filter(orig_sr, new_sr):
    reach = audio.resample_reach(orig_sr, new_sr)
    frames, at = 6 * reach, 3 * reach
    impulse = torch.zeros(frames, dtype=torch.float64)
    impulse[at] = 1.0
    y = audio.resample(impulse, orig_sr, new_sr).numpy()
    # distance of each output sample's time from the impulse, in input samples
    distance = np.abs(np.arange(len(y)) * Fraction(orig_sr, new_sr) - at)
    outside = np.array([d > reach for d in distance])
    assert np.all(y[outside] == 0.0)
    assert np.abs(y[~outside]).max() > 0.1
    # and the reach is not a loose bound: samples near its edge still see the impulse
    near_edge = np.array([reach - 2 * max(1, orig_sr / new_sr) < d <= reach for d in distance])
    assert np.any(y[near_edge] != 0.0)
    assert audio.resample_reach(44100, 44100) == 0


def test_resample_leading_dims_and_dtype():
    x = torch.randn(3, 2, 1000)
    y = audio.resample(x, 16000, 8000)
    assert y.shape == (3, 2, 500) and y.dtype == torch.float32
    torch.testing.assert_close(y[1, 0], audio.resample(x[1, 0], 16000, 8000))
    with pytest.raises(TypeError):
        audio.resample(torch.zeros(10, dtype=torch.int16), 16000, 8000)
    with pytest.raises(AudioError, match="new_sr"):
        audio.resample(x, 16000, -8000)


# ----------------------------------------------------------------------------------------------
# Channels


def test_convert_channels_mono_stereo():
    mono = torch.tensor([[0.1, -0.2, 0.3]])
    stereo = audio.convert_channels(mono, 2)
    assert torch.equal(stereo, torch.cat([mono, mono]))
    stereo[0, 0] = 9.0  # a real copy: writable, and the input is untouched
    assert mono[0, 0] == pytest.approx(0.1) and stereo[1, 0] == pytest.approx(0.1)
    both = torch.tensor([[1.0, 0.0, -0.5], [0.0, 1.0, 0.5]])
    assert torch.equal(audio.convert_channels(both, 1), torch.tensor([[0.5, 0.5, 0.0]]))
    assert audio.convert_channels(both, 2) is both
    # mono/stereo conversions are unambiguous, so even the strict policy performs them
    assert audio.convert_channels(both, 1, policy="error").shape == (1, 3)


def test_convert_channels_more_than_two():
    x = torch.arange(18, dtype=torch.float32).reshape(6, 3)
    with pytest.raises(AudioError, match="6 channels.*'downmix'.*'first'"):
        audio.convert_channels(x, 2)
    assert torch.equal(audio.convert_channels(x, 2, "first"), x[:2])
    down = audio.convert_channels(x, 2, "downmix")
    assert torch.equal(down, torch.tensor([[7.5, 8.5, 9.5]] * 2))
    assert torch.equal(audio.convert_channels(x, 1, "downmix"), torch.tensor([[7.5, 8.5, 9.5]]))
    with pytest.raises(AudioError, match="only 2 channels"):
        audio.convert_channels(x[:2], 4, "first")
    with pytest.raises(AudioError, match="policy"):
        audio.convert_channels(x, 2, "loudest")
    with pytest.raises(AudioError, match="channels"):
        audio.convert_channels(x, 0)
    with pytest.raises(AudioError, match=r"\(C, T\)"):
        audio.convert_channels(x[0], 2)


# ----------------------------------------------------------------------------------------------
# Writing


def test_write_creates_parents_and_keeps_umask_permissions(tmp_path):
    path = tmp_path / "deep" / "er" / "out.flac"
    audio.write(path, torch.zeros(1, 10), 8000)
    assert soundfile.info(str(path)).format == "FLAC"
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert os.listdir(path.parent) == ["out.flac"]


def test_write_long_signal_in_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(writing, "_BLOCK_FRAMES", 64)  # many blocks, and a partial last one
    x = np.random.default_rng(8).uniform(-1, 1, (3, 1000))
    audio.write(tmp_path / "long.wav", torch.from_numpy(x), 8000, subtype="DOUBLE")
    np.testing.assert_array_equal(soundfile.read(str(tmp_path / "long.wav"))[0], x.T)
    audio.write(tmp_path / "long.flac", x.astype(np.float32), 8000, subtype="PCM_24")
    np.testing.assert_allclose(soundfile.read(str(tmp_path / "long.flac"))[0], x.T, atol=2**-23)


def test_write_out_of_range_is_clipped_only_by_integer_formats(tmp_path):
    x = torch.tensor([[1.5, -1.5, 0.25]])
    audio.write(tmp_path / "f.wav", x, 8000, subtype="FLOAT")
    floats = soundfile.read(str(tmp_path / "f.wav"), dtype="float32")[0]
    np.testing.assert_array_equal(floats, x[0].numpy())
    audio.write(tmp_path / "i.wav", x, 8000, subtype="PCM_16")
    ints = soundfile.read(str(tmp_path / "i.wav"), dtype="int16")[0]
    np.testing.assert_array_equal(ints, [32767, -32768, 8192])  # clipped, not wrapped


def test_write_failure_leaves_no_temp_file_and_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "out.wav"
    audio.write(path, torch.full((1, 5), 0.5), 8000)
    before = path.read_bytes()

    def disk_full(self, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(soundfile.SoundFile, "write", disk_full)
    with pytest.raises(AudioError, match="failed to write .*out.wav.*No space left"):
        audio.write(path, torch.zeros(2, 100), 8000)
    assert os.listdir(tmp_path) == ["out.wav"]
    assert path.read_bytes() == before


def test_short_write_is_an_audio_error_and_samples_go_through_the_descriptor(tmp_path, monkeypatch):
    # soundfile asserts that every frame was written; libsndfile writing to a full disk fails so
    path = tmp_path / "out.wav"

    def short_write(self, data):
        raise AssertionError

    monkeypatch.setattr(soundfile.SoundFile, "write", short_write)
    with pytest.raises(AudioError, match="could not all be written"):
        audio.write(path, torch.zeros(2, 100), 8000)
    assert os.listdir(tmp_path) == []
    # libsndfile is given the file descriptor, not a Python file object: no Python I/O callback
    # (where cffi would swallow a Ctrl-C) runs during a write
    monkeypatch.undo()
    opened = []
    real_init = soundfile.SoundFile.__init__

    def spy(self, file, *args, **kwargs):
        opened.append(file)
        real_init(self, file, *args, **kwargs)

    monkeypatch.setattr(soundfile.SoundFile, "__init__", spy)
    audio.write(path, torch.zeros(2, 100), 8000)
    assert len(opened) == 1 and isinstance(opened[0], int)
    assert soundfile.info(str(path)).frames == 100


def test_write_to_unwritable_folder(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(AudioError, match="output folder .*file"):
        audio.write(blocker / "out.wav", torch.zeros(1, 10), 8000)

    def refuse(path):
        raise PermissionError(13, "Permission denied", str(path))

    # Root can write anywhere, so the refusal is simulated where the temporary file is created.
    monkeypatch.setattr(writing, "_create_exclusive", refuse)
    target = tmp_path / "ro" / "out.wav"
    with pytest.raises(AudioError, match=f"folder {tmp_path / 'ro'} is not writable"):
        audio.write(target, torch.zeros(1, 10), 8000)
    assert os.listdir(tmp_path / "ro") == []


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_write_to_read_only_folder_real(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        with pytest.raises(AudioError, match="not writable"):
            audio.write(folder / "out.wav", torch.zeros(1, 10), 8000)
    finally:
        folder.chmod(stat.S_IRWXU)


def test_write_rejects_bad_input(tmp_path):
    good = torch.zeros(2, 10)
    with pytest.raises(AudioError, match=r"\(C, T\)"):
        audio.write(tmp_path / "a.wav", torch.zeros(10), 8000)
    with pytest.raises(AudioError, match="NaN"):
        audio.write(tmp_path / "a.wav", torch.tensor([[0.0, float("nan")]]), 8000)
    with pytest.raises(AudioError, match="FLOAT is not available for format FLAC"):
        audio.write(tmp_path / "a.flac", good, 8000, subtype="FLOAT")
    with pytest.raises(AudioError, match="unknown audio extension '.xyz'"):
        audio.write(tmp_path / "a.xyz", good, 8000)
    with pytest.raises(AudioError, match="sample_rate"):
        audio.write(tmp_path / "a.wav", good, 0)
    assert os.listdir(tmp_path) == []
    audio.write(tmp_path / "n.wav", torch.tensor([[0.0, float("nan")]]), 8000, subtype="FLOAT",
                check_finite=False)
    assert np.isnan(soundfile.read(str(tmp_path / "n.wav"))[0][1])


@pytest.mark.parametrize("subtype", ["PCM_16", "FLOAT"])
def test_truncated_wav_is_an_error_naming_the_frames(tmp_path, subtype):
    full = tmp_path / "full.wav"
    soundfile.write(str(full), np.zeros((1000, 2), np.float32), 8000, subtype=subtype)
    data = full.read_bytes()
    cut = tmp_path / "cut.wav"
    cut.write_bytes(data[: len(data) - 400 * 2 * (2 if subtype == "PCM_16" else 4)])
    with pytest.raises(AudioError, match=r"cut.wav is truncated: its header announces 1000 frames but it holds 600"):
        audio.read(cut)
    with pytest.raises(AudioError, match="truncated"):
        audio.info(cut)
    assert audio.read(full)[0].shape == (2, 1000)
    assert audio.read(cut, allow_truncated=True)[0].shape == (2, 600)


# ------------------------------------------------------------------------------ soxr streams


@pytest.mark.parametrize("orig_sr,new_sr", [(44100, 22050), (22050, 44100), (44100, 48000), (16000, 22050)])
@pytest.mark.parametrize("length", [1, 2, 17, 4097, 30011])
def test_resample_stream_equals_one_shot_whatever_the_blocks(orig_sr, new_sr, length):
    x = torch.randn(2, length, generator=torch.Generator().manual_seed(length)) * 0.3
    whole = audio.resample(x, orig_sr, new_sr, backend="soxr")
    assert whole.shape == (2, audio.resampled_length(length, orig_sr, new_sr))
    for block in (1, 7, 1009, 44100):
        if block == 1 and length > 5000:
            continue
        stream = audio.ResampleStream(orig_sr, new_sr, 2)
        parts = [stream.process(x[:, i : i + block]) for i in range(0, length, block)]
        parts.append(stream.flush())
        assert torch.equal(torch.cat(parts, dim=-1), whole)


def test_soxr_and_fir_agree_in_the_passband():
    # A 1 kHz tone (well inside both passbands) through both resamplers: the same signal.
    t = torch.arange(44100, dtype=torch.float64) / 44100
    x = (0.5 * torch.sin(2 * math.pi * 1000 * t)).float()[None]
    a = audio.resample(x, 44100, 22050, backend="soxr")
    b = audio.resample(x, 44100, 22050)
    assert a.shape == b.shape
    assert (a - b)[:, 2000:-2000].abs().max() < 1e-4
    with pytest.raises(ValueError, match="backend"):
        audio.resample(x, 44100, 22050, backend="nope")


def test_stream_writer_is_atomic_and_pcm_reader_reads_a_wav_pipe(tmp_path):
    import io

    target = tmp_path / "out" / "stem.wav"
    x = torch.randn(2, 5000) * 0.3
    with pytest.raises(RuntimeError):
        with audio.StreamWriter(target, 44100, 2, "FLOAT") as writer:
            writer.write(x[:, :100])
            raise RuntimeError("interrupted")
    assert not target.exists() and list(target.parent.iterdir()) == []
    with audio.StreamWriter(target, 44100, 2, "FLOAT") as writer:
        for i in range(0, 5000, 777):
            writer.write(x[:, i : i + 777])
    back, rate = audio.read(target)
    assert rate == 44100 and torch.equal(back, x)
    with pytest.raises(AudioError, match="NaN"):
        with audio.StreamWriter(tmp_path / "nan.wav", 44100, 1) as writer:
            writer.write(torch.tensor([[0.0, float("nan")]]))
    assert not (tmp_path / "nan.wav").exists()
    # The same file read as a stream: header parsed, samples in blocks of any size.
    reader = audio.PcmReader(io.BytesIO(target.read_bytes()))
    assert (reader.sample_rate, reader.channels) == (44100, 2)
    blocks = []
    while True:
        block = reader.read(1234)
        if not block.shape[-1]:
            break
        blocks.append(block)
    assert torch.equal(torch.cat(blocks, dim=-1), x)
