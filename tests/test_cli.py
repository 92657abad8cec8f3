import pytest

from wavesep import cli


def test_dispatches_to_the_command(capsys):
    assert cli.main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "| M4 | 22050 | 2 | 2 | 147443 -> 16389 |" in out and "10,263,390" in out


def test_help_and_unknown_command(capsys):
    assert cli.main(["--help"]) == 0
    assert "separate" in capsys.readouterr().out
    assert cli.main([]) == 2
    assert cli.main(["frobnicate"]) == 2
    assert "unknown command" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["separate", "train", "evaluate", "synth", "serve"])
def test_every_command_has_help(command, capsys):
    assert cli.main([command, "--help"]) == 0
    assert "usage" in capsys.readouterr().out.lower()
