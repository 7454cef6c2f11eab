"""`dynamokv bench NAME`: runs bench/NAME.py of the checkout in the current directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from dynamokv.cli.main import main


def test_bench_rejects_a_name_that_is_not_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "../x"]) == 2
    assert "not a benchmark name" in capsys.readouterr().err


def test_bench_outside_a_checkout_says_where_to_run_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "paper"]) == 1
    assert "from a dynamokv checkout" in capsys.readouterr().err


def test_bench_runs_the_script_with_its_arguments(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "echo.py").write_text(
        "import sys, pathlib\npathlib.Path('out.txt').write_text(' '.join(sys.argv[1:]))\n"
        "sys.exit(3)\n")
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "echo", "--quick", "x"]) == 3
    assert (tmp_path / "out.txt").read_text() == "--quick x"
