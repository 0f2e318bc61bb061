"""The sandbox build talks: build.sh's progress lines, heartbeats while a component compiles, one line when cached.

No running sandbox is needed. The warm-cache test uses the real build cache (``$GITOPS_NB_CACHE``),
which ``scripts/test.sh`` fills with ``gitops-nb sandbox build`` before the tests; on a cold cache its
first call builds everything (about 15 minutes on 2 cores) and the second is the one checked.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from pathlib import Path

from gitops_nb.sandbox.control import COLD_BUILD_SECONDS, Sandbox, heartbeat_line, stream_build

ROOT = Path(__file__).resolve().parent.parent


def test_heartbeats_name_the_component_while_it_compiles() -> None:
    said: list[tuple[float, str]] = []
    t0 = time.monotonic()
    rc, out, _ = stream_build(
        [
            "bash",
            "-c",
            'echo "[sandbox    0s] redis-server: /usr/bin/redis-server" >&2; '
            'echo "[sandbox    0s] kube-apiserver: building" >&2; sleep 2; '
            'echo "[sandbox    2s] kube-apiserver: done in 2s" >&2; sleep 1; echo /the/bin/dir',
        ],
        say=lambda m: said.append((time.monotonic() - t0, m)),
        heartbeat=0.5,
    )
    assert rc == 0 and out == "/the/bin/dir\n"
    lines = [m for _, m in said]
    # the held-back location line is shown once the build turns out not to be cached
    assert lines[:2] == [
        "[sandbox    0s] redis-server: /usr/bin/redis-server",
        "[sandbox    0s] kube-apiserver: building",
    ]
    beats = [(t, m) for t, m in said if "still building" in m]
    assert 2 <= len(beats) <= 4, lines
    for _, m in beats:
        assert "still building kube-apiserver (" in m
        assert "~2m30s for it" in m and "about 15 min in all on 2 cores" in m
    assert all(b[0] - a[0] >= 0.45 for a, b in itertools.pairwise(beats))
    assert lines[-1] == "[sandbox    2s] kube-apiserver: done in 2s"  # no heartbeat after the component is done


def test_heartbeat_line() -> None:
    assert heartbeat_line("argocd", 75.4, 400) == (
        "[sandbox  400s] still building argocd (1m15s so far); "
        "a cold build takes ~2m50s for it, about 15 min in all on 2 cores"
    )
    assert sum(COLD_BUILD_SECONDS.values()) == 889  # docs/sandbox.md's measured cold build, plus helm
    assert "for it" not in heartbeat_line("something-new", 5, 5)


def test_a_failing_build_shows_what_it_printed() -> None:
    said: list[str] = []
    rc, out, tail = stream_build(
        [
            "bash",
            "-c",
            'echo "[sandbox    0s] redis-server: /usr/bin/redis-server" >&2; echo "no Go toolchain" >&2; exit 1',
        ],
        say=said.append,
    )
    assert rc == 1 and out == ""
    assert said == tail == ["[sandbox    0s] redis-server: /usr/bin/redis-server", "no Go toolchain"]


def test_a_cached_build_says_one_up_to_date_line() -> None:
    sb = Sandbox()
    first = sb.build(progress=lambda _m: None)  # warm after scripts/test.sh; builds otherwise
    said: list[str] = []
    t = time.monotonic()
    assert sb.build(progress=said.append) == first
    assert time.monotonic() - t < 5
    assert len(said) == 1 and "] up to date (key " in said[0], said


def test_the_cli_build_prints_progress_on_stderr_and_the_bin_dir_on_stdout() -> None:
    Sandbox().build(quiet=True)  # warm the cache first (a no-op after scripts/test.sh)
    res = subprocess.run(
        [sys.executable, "-m", "gitops_nb", "sandbox", "build"], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert Path(res.stdout.strip()).is_dir() and res.stdout.count("\n") == 1
    assert res.stderr.count("\n") == 1 and "] up to date (key " in res.stderr, res.stderr


def test_demo_sh_warns_of_the_first_build() -> None:
    text = (ROOT / "scripts" / "demo.sh").read_text()
    assert "several minutes" in text
