import errno

import pytest

from mldanet import cli


def run_raising(monkeypatch, capsys, error: BaseException) -> tuple[int, str]:
    """Run ``mldanet presets`` with its command replaced by one that raises ``error``."""
    import mldanet.commands.presets as presets_command

    def fails(args):
        raise error

    monkeypatch.setattr(presets_command, "run", fails)
    code = cli.main(["presets"])
    return code, capsys.readouterr().err


def test_user_errors_are_one_line_with_exit_code_2(monkeypatch, capsys):
    code, err = run_raising(monkeypatch, capsys, ValueError("bad value 'x' in\n  data.height"))
    assert (code, err) == (2, "mldanet presets: error: bad value 'x' in data.height\n")


def test_a_full_disk_is_one_line_with_exit_code_1(monkeypatch, capsys):
    full = OSError(errno.ENOSPC, "no space left on the disk to write checkpoint runs/x/last.pt (3 MiB free there)")
    code, err = run_raising(monkeypatch, capsys, full)
    assert code == 1
    assert err == f"mldanet presets: error: {full}\n"


def test_a_path_the_user_gave_wrongly_is_one_line_with_exit_code_2(monkeypatch, capsys):
    code, err = run_raising(monkeypatch, capsys, PermissionError(errno.EACCES, "Permission denied", "runs/x"))
    assert (code, err) == (2, "mldanet presets: error: [Errno 13] Permission denied: 'runs/x'\n")
    code, err = run_raising(monkeypatch, capsys, NotADirectoryError("data path runs/x is a file, not a folder"))
    assert (code, err) == (2, "mldanet presets: error: data path runs/x is a file, not a folder\n")


def test_any_other_os_error_is_one_line_with_exit_code_1(monkeypatch, capsys):
    code, err = run_raising(monkeypatch, capsys, OSError(errno.EROFS, "Read-only file system", "runs/x/last.pt"))
    assert (code, err) == (1, "mldanet presets: error: [Errno 30] Read-only file system: 'runs/x/last.pt'\n")


def test_interrupt_exits_130(monkeypatch, capsys):
    assert run_raising(monkeypatch, capsys, KeyboardInterrupt()) == (130, "mldanet presets: interrupted\n")


def test_a_dataloader_worker_error_keeps_only_the_original_message():
    wrapped = ValueError(
        "Caught ValueError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\nValueError: image /data/0001.png is unreadable'
    )
    assert cli.one_line(wrapped) == "image /data/0001.png is unreadable"


def test_unknown_command_prints_the_list(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["no-such-command"])
    assert exited.value.code == 2
    assert "invalid choice: 'no-such-command'" in capsys.readouterr().err


@pytest.mark.parametrize("command", list(cli.COMMANDS))
def test_every_option_of_every_command_says_what_it_does(command):
    import argparse

    parser = cli.build_parser(command)
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices[command]
    silent = [a.option_strings[0] if a.option_strings else a.dest for a in sub._actions
              if not isinstance(a, argparse._HelpAction) and not (a.help or "").strip()]
    assert silent == [], f"mldanet {command}: options without a help text: {silent}"


def test_an_internal_error_says_it_is_a_bug_and_how_to_see_the_traceback(monkeypatch, capsys):
    monkeypatch.delenv("MLDANET_DEBUG", raising=False)
    code, err = run_raising(monkeypatch, capsys, KeyError("decoder.heads.0"))
    assert code == 1
    assert err.startswith("mldanet presets: internal error, a bug in mldanet: KeyError: 'decoder.heads.0'")
    assert "--debug" in err and "Traceback" not in err


@pytest.mark.parametrize("how", ["flag", "environment"])
def test_debug_shows_every_traceback(monkeypatch, how):
    import mldanet.commands.presets as presets_command

    def fails(args):
        raise ValueError("a user mistake, seen with its traceback")

    monkeypatch.setattr(presets_command, "run", fails)
    if how == "environment":
        monkeypatch.setenv("MLDANET_DEBUG", "1")
    with pytest.raises(ValueError, match="seen with its traceback"):
        cli.main(["--debug", "presets"] if how == "flag" else ["presets"])
