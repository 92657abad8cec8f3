"""The umbrella command ``wavesep COMMAND [ARGS]``: separate, train, evaluate, synth, presets, serve.

Each command is the ``main(argv)`` of its module (also installed as ``wavesep-COMMAND``), so
``wavesep evaluate --help`` and ``wavesep-evaluate --help`` are the same thing.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "separate": ("wavesep.separate", "separate songs into stems"),
    "train": ("wavesep.train", "train a model (the paper's recipe by default)"),
    "evaluate": ("wavesep.evaluate", "SiSEC-style BSS Eval v4 evaluation"),
    "synth": ("wavesep.synth", "render an offline synthetic multitrack corpus"),
    "presets": ("wavesep.model", "print the model presets with sizes and parameter counts"),
    "serve": ("wavesep.web.serve", "a local web page for separating songs (extra: web)"),
}


def main(argv=None) -> int:
    """Dispatches ``argv[0]`` to its command's ``main(argv[1:])``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: wavesep COMMAND [ARGS ...]\n\ncommands:")
        for name, (_, text) in COMMANDS.items():
            print(f"  {name:10s} {text}")
        print("\n'wavesep COMMAND --help' describes a command.")
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"wavesep: unknown command {name!r}; choose one of {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    module = importlib.import_module(COMMANDS[name][0])
    try:
        return int(module.main(rest) or 0)
    except SystemExit as exc:  # argparse's --help and usage errors
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)


if __name__ == "__main__":
    raise SystemExit(main())
