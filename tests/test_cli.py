"""The gitops-nb command on real repos."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gitops_nb.sandbox.demo import DemoRepo


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gitops_nb", *args], capture_output=True, text=True)


def test_what_changed_prints_and_saves(demo_repo: DemoRepo, tmp_path: Path) -> None:
    res = _run(
        "what-changed",
        str(demo_repo.path),
        "--at",
        demo_repo.incident_at.isoformat(),
        "--window",
        "3h",
        "--out",
        str(tmp_path / "res"),
    )
    assert res.returncode == 0, res.stderr
    assert demo_repo.commits["checkout-prod-bad"][:10] in res.stdout
    culprits = res.stdout.split("likely culprits:")[1]
    assert culprits.splitlines()[2].split()[0] == "1" and "checkout-api/production" in culprits.splitlines()[2]
    assert (tmp_path / "res" / "summary.json").exists()


def test_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    res = _run("what-changed", str(tmp_path / "missing"))
    assert res.returncode == 2
    assert res.stderr.startswith("gitops-nb: error: ") and "does not exist" in res.stderr
    assert "Traceback" not in res.stderr
    res = _run("what-changed", str(tmp_path))
    assert res.returncode == 2 and "not a git repository" in res.stderr


def test_bad_window_is_a_clear_error(demo_repo: DemoRepo) -> None:
    res = _run("what-changed", str(demo_repo.path), "--window=-1h")
    assert res.returncode == 2 and "window must be positive" in res.stderr and "Traceback" not in res.stderr


def test_demo_refuses_a_foreign_repo(tmp_path: Path) -> None:
    target = tmp_path / "deploy-config"
    subprocess.run(["git", "init", "-q", str(target)], check=True)
    res = _run("demo", "--git-only", "--workdir", str(tmp_path), "--no-run")
    assert res.returncode == 2 and "not a gitops-nb demo repo" in res.stderr
    assert not (target / "apps").exists()


def test_relative_at_as_the_help_suggests(demo_repo: DemoRepo) -> None:
    """`--at -30m` used to be taken by argparse for an unknown option."""
    res = _run("what-changed", str(demo_repo.path), "--at", "-30m", "--window", "1h")
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("T = ")


def test_ambiguous_window_and_unwritable_out_are_clear_errors(demo_repo: DemoRepo, tmp_path: Path) -> None:
    res = _run("what-changed", str(demo_repo.path), "--window", "1M")
    assert res.returncode == 2 and "ambiguous" in res.stderr and "Traceback" not in res.stderr
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    res = _run(
        "what-changed", str(demo_repo.path), "--at", demo_repo.incident_at.isoformat(), "--out", str(blocker / "res")
    )
    assert res.returncode == 2 and "cannot write" in res.stderr and "Traceback" not in res.stderr


def test_a_bare_number_is_not_taken_as_a_time() -> None:
    import pytest

    from gitops_nb import TimeParseError, parse_at, parse_window

    with pytest.raises(TimeParseError, match="bare number"):
        parse_at(1773842400)
    with pytest.raises(TimeParseError, match="ambiguous"):
        parse_window("1M")
    assert parse_window("1m").total_seconds() == 60


def test_an_empty_window_says_why(demo_repo: DemoRepo) -> None:
    at = demo_repo.incident_at + __import__("pandas").Timedelta("100d")
    res = _run("what-changed", str(demo_repo.path), "--at", at.isoformat(), "--window", "1h")
    assert res.returncode == 0, res.stderr
    assert "no commit in the 1h before T: the newest before T is" in res.stdout
    assert "100d" in res.stdout and "Widen the window" in res.stdout


def test_demo_reset_needs_the_sandbox(tmp_path: Path) -> None:
    res = _run("demo", "--git-only", "--reset", "--workdir", str(tmp_path))
    assert res.returncode == 2 and "--reset puts the sandbox's incident back" in res.stderr


def test_demo_origin_and_clone_and_a_foreign_origin(tmp_path: Path) -> None:
    """The sandbox demo's layout: a bare origin and a clone tracking it; a foreign repo in either place is kept."""
    from gitops_nb.errors import InputError
    from gitops_nb.sandbox.demo import remake_demo_repo

    clone, origin = tmp_path / "deploy-config", tmp_path / "deploy-config.git"
    demo = remake_demo_repo(clone, origin=origin)
    head = subprocess.run(["git", "-C", str(origin), "rev-parse", "main"], capture_output=True, text=True).stdout
    assert demo.origin == origin and head.strip() == demo.commits["docs"]
    status = subprocess.run(["git", "-C", str(clone), "status", "-sb"], capture_output=True, text=True).stdout
    assert status.startswith("## main...origin/main")
    remake_demo_repo(clone, origin=origin)  # its own earlier demo is replaced
    other = tmp_path / "other"
    subprocess.run(["git", "init", "-q", "--bare", str(other / "deploy-config.git")], check=True)
    with pytest.raises(InputError, match="not a gitops-nb demo repo"):
        remake_demo_repo(other / "deploy-config", origin=other / "deploy-config.git")
    assert (other / "deploy-config.git" / "HEAD").exists() and not (other / "deploy-config").exists()
