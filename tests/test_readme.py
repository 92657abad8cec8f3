"""The README's code examples run and print what the README says they print."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _run_block_and_read_promise(capsys, marker: str, printed_line: str) -> tuple:
    """Runs the README's python block that contains ``marker``; returns (what it printed, the
    comment after the ``print(`` call starting with ``printed_line``)."""
    block = next(b for b in _python_blocks() if marker in b)
    exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out.strip()
    promised = re.search(re.escape(printed_line) + r".*#\s*(.*)", block).group(1).strip()
    return printed, promised


def test_layer_library_example_runs_and_prints_its_comment(capsys):
    printed, promised = _run_block_and_read_promise(capsys, "class TinyUNet", "print(n, net")
    assert printed == promised


def test_model_example_runs_and_prints_its_comment(capsys):
    printed, promised = _run_block_and_read_promise(capsys, 'presets.get("M4")', "print(model.sources")
    assert printed == promised


def test_preset_table_is_current(capsys):
    from wavesep.model import main

    main([])
    table = capsys.readouterr().out.strip()
    assert table.count("\n") >= 10
    assert table in README.read_text(), "regenerate the README table with `wavesep presets`"
