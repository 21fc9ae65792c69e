"""``mldanet splits --check``: the frames a training list shares with a test list."""

from mldanet.cli import main


def test_check_reports_the_shared_frames_and_exits_1(tmp_path, capsys):
    train = tmp_path / "train_files.txt"
    test = tmp_path / "test_files.txt"
    train.write_text("d/a 1 l\nd/a 2 r\nd/b 7 l\n")
    test.write_text("d/a 2 l\nd/c 1 l\n")
    assert main(["splits", "--check", str(train), str(test)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(f"the training list {train} holds 1 of the 2 test frames of {test} (first: 'd/a 2 l')")
    assert out[1:] == ["  d/a 2 l"]
    test.write_text("d/c 1 l\n")
    assert main(["splits", "--check", str(train), str(test)]) == 0
    assert capsys.readouterr().out == f"{train} (3 lines) and {test} (1 lines) share no frame\n"
    assert main(["splits", "--check", str(train), str(tmp_path / "absent.txt")]) == 2
    assert f"split file not found: {tmp_path / 'absent.txt'}" in capsys.readouterr().err
