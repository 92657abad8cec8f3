"""The Wave-U-Net model (Stoller, Ewert and Dixon, ISMIR 2018) and its configuration.

Shape legend: B batch, S sources, C audio channels, F feature channels, T time (samples).

``WaveUNet(config)`` maps a mixture (B, C, T) to source estimates (B, S, C, T_out). With valid
(unpadded) convolutions T_out < T: every output sample is computed from real input only, and the
output is aligned with the centre of the input (``model.context`` samples are consumed on each
side). Only some input lengths are possible; ``model.input_length`` and ``model.output_length``
give them, and valid lengths differ by multiples of ``model.stride`` = 2**levels.

The model never reads files, never chunks long signals and never clamps its output: see
:mod:`wavesep.apply` for full-length inference.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from .layers import DownBlock, UpBlock, conv_input_length, conv_output_length, make_conv, make_output

VOCALS_TASK = ("accompaniment", "vocals")
MULTI_TASK = ("bass", "drums", "other", "vocals")


@dataclass(frozen=True)
class WaveUNetConfig:
    """Everything needed to rebuild a :class:`WaveUNet` (stored in every checkpoint).

    Attributes:
        sources: source names, in output order. With the "difference" output the last one is the
            mixture minus the others (Wave-U-Net: accompaniment, vocals / bass, drums, other, vocals).
        channels: audio channels C of input and output (1 mono, 2 stereo).
        levels: number L of down (and up) blocks; the total decimation is 2**L.
        filters: feature channels of the first down block.
        growth: feature channels added per level (linear growth: level i has
            ``filters + growth * (i - 1)``; the bottleneck ``filters + growth * levels``).
        down_kernel: kernel size of the down-block and bottleneck convolutions (samples).
        up_kernel: kernel size of the up-block convolutions (samples).
        upsampling: "linear" (midpoint interpolation) or "learned" (one weight per feature).
        conv_mode: "valid" (unpadded, with input context) or "same" (zero padding).
        output: "difference" or "direct".
        output_activation: "tanh" or "linear".
        zero_mean_first: use :class:`wavesep.layers.ZeroMeanConv1d` as the first convolution.
        sample_rate: sample rate the model works at (Hz).
        negative_slope: slope of the LeakyReLU activations.
    """

    sources: tuple = VOCALS_TASK
    channels: int = 2
    levels: int = 12
    filters: int = 24
    growth: int = 24
    down_kernel: int = 15
    up_kernel: int = 5
    upsampling: str = "linear"
    conv_mode: str = "valid"
    output: str = "difference"
    output_activation: str = "tanh"
    zero_mean_first: bool = False
    sample_rate: int = 22050
    negative_slope: float = 0.2

    def __post_init__(self):
        object.__setattr__(self, "sources", tuple(str(s) for s in self.sources))
        problems = []
        if len(self.sources) < 1 or len(set(self.sources)) != len(self.sources):
            problems.append(f"sources must be distinct names, got {self.sources}")
        if self.output == "difference" and len(self.sources) < 2:
            problems.append("the difference output needs at least two sources")
        for name in ("channels", "levels", "filters", "down_kernel", "up_kernel", "sample_rate"):
            if int(getattr(self, name)) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.growth < 0:
            problems.append(f"growth must be >= 0, got {self.growth}")
        choices = {
            "upsampling": ("linear", "learned"),
            "conv_mode": ("valid", "same"),
            "output": ("difference", "direct"),
            "output_activation": ("tanh", "linear"),
        }
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                problems.append(f"{name} must be one of {allowed}, got {getattr(self, name)!r}")
        if problems:
            raise ValueError("invalid WaveUNetConfig: " + "; ".join(problems))

    def to_dict(self) -> dict:
        """Plain-data form (str, int, float, bool, list) for checkpoints and JSON."""
        d = dataclasses.asdict(self)
        d["sources"] = list(self.sources)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "WaveUNetConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise ValueError (a newer checkpoint format)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown WaveUNetConfig fields {sorted(unknown)}")
        return cls(**dict(d))

    def replace(self, **changes) -> "WaveUNetConfig":
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def level_filters(self, level: int) -> int:
        """Feature channels of down/up level ``level`` (1-based); ``levels + 1`` is the bottleneck."""
        return self.filters + self.growth * (level - 1)


class WaveUNet(nn.Module):
    """Wave-U-Net: decimating encoder, bottleneck, interpolating decoder with skip connections.

    forward(mix (B, C, T)) -> estimates (B, S, C, T_out), T_out = ``output_length(T)``.

    Attributes:
        config: the :class:`WaveUNetConfig`.
        sources: source names (tuple of str), ``num_sources`` = S, ``channels`` = C,
        sample_rate: Hz, ``stride`` = 2**levels: valid input lengths differ by multiples of it and
            the network is shift-equivariant for input shifts that are multiples of it.
        context: (left, right) input samples consumed on each side of the output (0 with "same").
    """

    def __init__(self, config: WaveUNetConfig | None = None):
        super().__init__()
        self.config = config = config or WaveUNetConfig()
        mode = config.conv_mode
        downs = []
        in_ch = config.channels
        for level in range(1, config.levels + 1):
            out_ch = config.level_filters(level)
            downs.append(
                DownBlock(
                    in_ch,
                    out_ch,
                    config.down_kernel,
                    mode,
                    config.negative_slope,
                    zero_mean=config.zero_mean_first and level == 1,
                )
            )
            in_ch = out_ch
        self.downs = nn.ModuleList(downs)
        bottleneck_ch = config.level_filters(config.levels + 1)
        self.bottleneck = make_conv(in_ch, bottleneck_ch, config.down_kernel, mode)
        self.bottleneck_act = nn.LeakyReLU(config.negative_slope)
        ups = []
        in_ch = bottleneck_ch
        for level in range(config.levels, 0, -1):
            out_ch = config.level_filters(level)
            ups.append(
                UpBlock(in_ch, out_ch, out_ch, config.up_kernel, mode, config.upsampling, config.negative_slope)
            )
            in_ch = out_ch
        self.ups = nn.ModuleList(ups)
        self.head = make_output(
            config.output, in_ch, config.channels, len(config.sources), config.output_activation
        )
        self.stride = 2**config.levels
        self._min_input = self.input_length(1)
        out = self.output_length(self._min_input)
        left = (self._min_input - out) // 2
        self.context = (left, self._min_input - out - left)

    # ------------------------------------------------------------------ description
    @property
    def sources(self) -> tuple:
        return self.config.sources

    @property
    def num_sources(self) -> int:
        return len(self.config.sources)

    @property
    def channels(self) -> int:
        return self.config.channels

    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ length arithmetic
    def _trace(self, n: int) -> int:
        """Forward length arithmetic; raises ValueError when ``n`` is not a valid input length."""
        mode, cfg = self.config.conv_mode, self.config
        skips = []
        for down in self.downs:
            skips.append(down.skip_length(n))
            n = down.output_length(n)
        n = conv_output_length(n, cfg.down_kernel, mode)
        for up, skip in zip(self.ups, reversed(skips)):
            upsampled = up.upsampled_length(n)
            if skip < upsampled:
                raise ValueError(f"skip of {skip} samples is shorter than the upsampled {upsampled}")
            n = up.output_length(n)
        return self.head.output_length(n)

    def output_length(self, input_length: int) -> int:
        """Output length T_out for a valid input of ``input_length`` samples.

        Raises ValueError naming the nearest valid lengths when the input length is not valid.
        """
        try:
            return self._trace(int(input_length))
        except ValueError:
            raise ValueError(self._invalid_message(int(input_length))) from None

    def input_length(self, output_length: int) -> int:
        """The smallest valid input length whose output has at least ``output_length`` samples."""
        cfg, mode = self.config, self.config.conv_mode
        n = self.head.input_length(int(output_length))
        for up in reversed(self.ups):
            n = up.input_length(n)
        n = conv_input_length(n, cfg.down_kernel, mode)
        for down in reversed(self.downs):
            n = down.input_length(n)
        # The backward walk yields a valid length for every block; the skips are checked by the
        # forward trace, stepping up by the stride in the (unusual) configurations where they fail.
        for _ in range(64):
            try:
                self._trace(n)
                return n
            except ValueError:
                n += self.stride
        raise ValueError(f"no valid input length found for an output of {output_length} samples")

    def is_valid_length(self, input_length: int) -> bool:
        """Whether the network can take an input of ``input_length`` samples."""
        try:
            self._trace(int(input_length))
            return True
        except ValueError:
            return False

    def nearest_valid_lengths(self, input_length: int) -> tuple:
        """(largest valid length <= n or None, smallest valid length >= n)."""
        first = self._min_input
        if input_length <= first:
            return (first if input_length == first else None, first)
        k, rem = divmod(input_length - first, self.stride)
        lower = first + k * self.stride
        return (lower, lower if rem == 0 else lower + self.stride)

    def _invalid_message(self, n: int) -> str:
        lower, upper = self.nearest_valid_lengths(n)
        near = f"{lower} or {upper}" if lower is not None else f"{upper} (the shortest)"
        return (
            f"input length {n} is not valid for this Wave-U-Net; the nearest valid lengths are {near} "
            f"(valid lengths are {self._min_input} + k * {self.stride})"
        )

    # ------------------------------------------------------------------ forward
    def forward(self, mix: Tensor) -> Tensor:
        """mix (B, C, T) -> estimates (B, S, C, T_out); T must be a valid input length."""
        if mix.dim() != 3 or mix.shape[1] != self.config.channels:
            raise ValueError(
                f"expected a mixture of shape (batch, {self.config.channels}, time), got {tuple(mix.shape)}"
            )
        if not self.is_valid_length(mix.shape[-1]):
            raise ValueError(self._invalid_message(mix.shape[-1]))
        x = mix
        skips = []
        for down in self.downs:
            x, skip = down(x)  # (B, F_i, T_i), skip (B, F_i, T_conv_i)
            skips.append(skip)
        x = self.bottleneck_act(self.bottleneck(x))  # (B, F_bottleneck, T_b)
        for up, skip in zip(self.ups, reversed(skips)):
            x = up(x, skip)  # (B, F_i, T_up_i)
        return self.head(x, mix)  # (B, S, C, T_out)


# ---------------------------------------------------------------------- presets


def _paper(**changes) -> WaveUNetConfig:
    return WaveUNetConfig(**changes)


_PRESETS = {
    # The paper's variants (Table 1 of Stoller et al. 2018; sizes in REFERENCE.md).
    "M1": lambda: _paper(channels=1, conv_mode="same", output="direct"),
    "M2": lambda: _paper(channels=1, conv_mode="same"),
    "M3": lambda: _paper(channels=1),
    "M4": lambda: _paper(),
    "M5": lambda: _paper(upsampling="learned"),
    "M6": lambda: _paper(sources=MULTI_TASK),
    "M5-HighSR": lambda: _paper(upsampling="learned", sample_rate=44100),
    # Smaller networks for CPU work (sizes, context and parameter counts in README; regenerate
    # with `python -m wavesep.model`).
    "tiny": lambda: _paper(levels=4, filters=8, growth=8),
    "small": lambda: _paper(levels=8, filters=16, growth=16),
    "small-multi": lambda: _paper(levels=8, filters=16, growth=16, sources=MULTI_TASK),
    "wide": lambda: _paper(levels=9, filters=32, growth=16),
    # A CPU vocals network with a longer context than "small" (it lost to "small" as the
    # default model at equal training iterations; see README's model card).
    "compact": lambda: _paper(levels=10, filters=12, growth=12),
    # "small" with two more levels (0.74 s context); can start from trained "small" weights
    # (train.py --init-from, wavesep.grow).
    "deep": lambda: _paper(levels=10, filters=16, growth=16),
    # "deep" at the paper's widths; can start from trained "deep" weights (widened; wavesep.grow).
    "deep24": lambda: _paper(levels=10, filters=24, growth=24),
}

_DESCRIPTIONS = {
    "M1": "paper M1: mono, same convs, direct output",
    "M2": "paper M2: M1 + difference output",
    "M3": "paper M3: M2 + valid convs (input context)",
    "M4": "paper M4: M3 + stereo (the paper's best vocals model)",
    "M5": "paper M5: M4 + learned upsampling",
    "M6": "paper M6: M4 for bass, drums, other, vocals",
    "M5-HighSR": "paper M5 at 44.1 kHz",
    "tiny": "4 levels, 8 filters: untrained-model and CLI tests",
    "small": "8 levels, 16+16i filters: CPU vocals models (the first stage of the bundled default model)",
    "small-multi": "small for bass, drums, other, vocals",
    "wide": "9 levels, 32+16i filters: CPU vocals model with a longer context",
    "compact": "10 levels, 12+12i filters: CPU vocals model with a 0.74 s context",
    "deep": "10 levels, 16+16i filters: small grown to a 0.74 s context (the bundled default model)",
    "deep24": "10 levels, 24+24i filters: deep at the paper's widths (can be widened from deep)",
}


class _Presets:
    """Named configurations: ``presets.get(name)`` returns a :class:`WaveUNetConfig`."""

    def names(self) -> list:
        """All preset names, paper variants first."""
        return list(_PRESETS)

    def get(self, name: str) -> WaveUNetConfig:
        """The configuration of preset ``name``; ValueError listing the names if unknown."""
        try:
            return _PRESETS[name]()
        except KeyError:
            raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(_PRESETS)}") from None

    def describe(self, name: str) -> str:
        """One line saying what the preset is."""
        self.get(name)
        return _DESCRIPTIONS[name]


presets = _Presets()


def preset_table(names=None, output_length: int = 16384) -> list:
    """Rows describing presets: name, sample rate, channels, sources, input and output length for
    a requested ``output_length`` (samples), context (samples and seconds), parameters."""
    rows = []
    for name in names or presets.names():
        cfg = presets.get(name)
        with torch.device("meta"):
            model = WaveUNet(cfg)
        n_in = model.input_length(output_length)
        n_out = model.output_length(n_in)
        rows.append(
            {
                "name": name,
                "sample_rate": cfg.sample_rate,
                "channels": cfg.channels,
                "sources": len(cfg.sources),
                "input": n_in,
                "output": n_out,
                "context": model.context[0],
                "context_seconds": round(model.context[0] / cfg.sample_rate, 3),
                "parameters": model.num_parameters(),
                "description": presets.describe(name),
            }
        )
    return rows


def main(argv=None) -> int:
    """Prints the preset table as Markdown (the README's table is generated by this)."""
    import argparse

    parser = argparse.ArgumentParser(description="Print the Wave-U-Net preset table.")
    parser.add_argument("--output-length", type=int, default=16384, help="requested output samples")
    args = parser.parse_args(argv)
    print("| preset | rate (Hz) | ch | sources | input -> output | context (samples, s) | parameters | |")
    print("|---|---|---|---|---|---|---|---|")
    for r in preset_table(output_length=args.output_length):
        print(
            f"| {r['name']} | {r['sample_rate']} | {r['channels']} | {r['sources']} | {r['input']} -> {r['output']} "
            f"| {r['context']}, {r['context_seconds']} | {r['parameters']:,} | {r['description']} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

