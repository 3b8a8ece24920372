import os

import pytest

from ragsift.atomic import atomic_dir, atomic_file


def test_atomic_file_failure_leaves_old_content_and_no_temp(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_file(target) as handle:
            handle.write("half")
            raise RuntimeError("crash")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_atomic_dir_replaces_whole_folder(tmp_path):
    target = tmp_path / "index"
    target.mkdir()
    (target / "stale").write_text("x")
    with atomic_dir(target) as tmp:
        (tmp / "fresh").write_text("y")
    assert sorted(os.listdir(target)) == ["fresh"]
    assert os.listdir(tmp_path) == ["index"]


def test_atomic_dir_interrupted_keeps_previous(tmp_path):
    target = tmp_path / "index"
    with atomic_dir(target) as tmp:
        (tmp / "v1").write_text("1")
    with pytest.raises(KeyboardInterrupt):
        with atomic_dir(target) as tmp:
            (tmp / "v2").write_text("2")
            raise KeyboardInterrupt
    assert os.listdir(target) == ["v1"]
    assert os.listdir(tmp_path) == ["index"]
