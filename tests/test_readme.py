"""The README's code examples run and print what the README says they print."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks():
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_layer_library_example_runs_and_prints_its_comment(capsys):
    block = next(b for b in _python_blocks() if "class TinyUNet" in b)
    exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out.strip()
    promised = re.search(r"print\(n, net.*#\s*(.*)", block).group(1).strip()
    assert printed == promised


def test_model_example_runs_and_prints_its_comment(capsys):
    block = next(b for b in _python_blocks() if 'presets.get("M4")' in b)
    exec(compile(block, "README.md", "exec"), {})
    printed = capsys.readouterr().out.strip()
    promised = re.search(r"print\(model.sources.*#\s*(.*)", block).group(1).strip()
    assert printed == promised


def test_preset_table_is_current(capsys):
    from wavesep.model import main

    main([])
    table = capsys.readouterr().out.strip()
    assert table.count("\n") >= 10
    assert table in README.read_text(), "regenerate the README table with `wavesep presets`"
