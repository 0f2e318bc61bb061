"""The real ``helm`` and ``kustomize`` binaries, and copies of a revision's files to run them on.

:func:`find_tool` finds a tool the way every part of gitops-nb does (``$GITOPS_NB_HELM`` /
``$GITOPS_NB_KUSTOMIZE``, the sandbox's newest finished build, ``PATH``); :func:`archive_tree`
exports (part of) a revision with ``git archive`` into a directory, so the user's work tree is never
touched; :func:`helm_template` runs ``helm template`` there and splits its output by the template
each document came from (``# Source:``).
"""

from __future__ import annotations

import collections
import os
import posixpath
import re
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..errors import RepoError
from .gitio import GIT
from .manifests import load_documents

__all__ = ["TOOL_ENV", "HelmOutput", "archive_tree", "find_tool", "helm_template", "not_found", "tool_id", "tool_runs"]

#: the environment variable that names each tool's binary
TOOL_ENV = {"kustomize": "GITOPS_NB_KUSTOMIZE", "helm": "GITOPS_NB_HELM"}
_TIMEOUT = 300  # seconds for one helm template
#: how many times each tool was run by this process (renders served from a cache do not count)
tool_runs: collections.Counter[str] = collections.Counter()
_ERROR_LINES = 6


def _newest_sandbox_bin(tool: str) -> Path | None:
    """The tool in the most recent complete sandbox build (``gitops-nb sandbox build``), if any."""
    cache = Path(os.environ.get("GITOPS_NB_CACHE", Path.home() / ".cache" / "gitops-nb"))
    stamps = sorted((cache / "sandbox").glob("*/stamp"), key=lambda p: p.stat().st_mtime, reverse=True)
    return next((s.parent / "bin" / tool for s in stamps if (s.parent / "bin" / tool).is_file()), None)


def find_tool(tool: str, bin_dir: str | Path | None = None) -> Path | None:
    """Where ``tool`` (kustomize, helm) is: ``bin_dir``, ``$GITOPS_NB_<TOOL>``, the sandbox's build, ``PATH``."""
    if bin_dir is not None:
        p = Path(bin_dir) / tool
        return p if p.is_file() else None
    if env := os.environ.get(TOOL_ENV[tool]):
        return Path(env) if Path(env).is_file() else None
    if found := _newest_sandbox_bin(tool):
        return found
    which = shutil.which(tool)
    return Path(which) if which else None


def not_found(tool: str) -> str:
    """What to say when ``tool`` is not found."""
    return f"{tool} not found: run `gitops-nb sandbox build`, set ${TOOL_ENV[tool]}, or put {tool} on PATH"


def tool_id(p: Path) -> list[Any]:
    """The binary's identity in a cache key (its real path, size and mtime)."""
    st = p.resolve().stat()
    return [str(p.resolve()), st.st_size, st.st_mtime_ns]


def archive_tree(repo: str, rev: str, dest: Path, paths: Sequence[str] = ()) -> None:
    """Extract the tree of ``rev`` (only ``paths``, when given) into ``dest`` with ``git archive``."""
    dest.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(
        [*GIT, "-C", repo, "archive", "--format=tar", rev, *(["--", *paths] if paths else [])],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
            tar.extractall(dest, filter="data")
        err = proc.stderr.read()  # small: read after the archive, no deadlock
        status = proc.wait()
    if status != 0:
        raise RepoError(f"git archive {rev} failed: {err.decode(errors='replace').strip()}", path=repo)


def first_lines(text: str) -> str:
    """A tool's error output, cut to its first lines."""
    lines = [ln for ln in text.strip().splitlines() if ln.strip()]
    return "\n".join(lines[:_ERROR_LINES]) or "(no output)"


def tool_env(home: Path) -> dict[str, str]:
    """A clean environment for a tool: its own HOME and Helm dirs under ``home``."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "HELM_CACHE_HOME": f"{home}/helm/cache",
        "HELM_CONFIG_HOME": f"{home}/helm/config",
        "HELM_DATA_HOME": f"{home}/helm/data",
        "LANG": "C.UTF-8",
    }


@dataclass(frozen=True)
class HelmOutput:
    """``helm template``'s documents, each with the repo path of the template it came from; or why it failed."""

    docs: list[tuple[str | None, Any]] = field(default_factory=list)
    error: str | None = None


_SOURCE = re.compile(r"(?m)^# Source: (.+?)\s*$")


def _split_sources(out: str, chart: str, chart_name: str) -> list[tuple[str | None, Any]]:
    """Each document of helm's output with its template as a repo path (``<name>/templates/x`` -> ``<chart>/templates/x``)."""
    docs: list[tuple[str | None, Any]] = []
    for chunk in re.split(r"(?m)^---\s*$", out):
        m = _SOURCE.search(chunk)
        src: str | None = None
        if m:
            rel = m.group(1).split("/", 1)[1] if "/" in m.group(1) else m.group(1)
            if m.group(1).split("/", 1)[0] == chart_name:
                src = posixpath.join(chart, rel) if chart else rel
        docs += [(src, d) for d in load_documents(chunk) if d is not None]
    return docs


def helm_template(
    repo: str,
    rev: str,
    chart: str,
    *,
    release: str,
    namespace: str = "default",
    value_files: Sequence[str] = (),
    values: str | None = None,
    parameters: Sequence[tuple[str, str, bool]] = (),
    binary: Path | None = None,
) -> HelmOutput:
    """``helm template <release> <chart> --namespace <ns> -f <value files>... [-f inline] [--set ...]``
    on a ``git archive`` copy of the chart and its value files at ``rev``; never raises for a bad chart.

    ``value_files`` are repo paths; ``values`` inline YAML; ``parameters`` (name, value, forceString).
    """
    binary = binary or find_tool("helm")
    if binary is None:
        return HelmOutput(error=not_found("helm"))
    with tempfile.TemporaryDirectory(prefix="gitops-nb-helm-") as tmp:
        root = Path(tmp) / "tree"
        try:
            archive_tree(repo, rev, root, [chart or ".", *value_files])
        except (RepoError, tarfile.TarError, OSError) as e:
            return HelmOutput(error=f"could not export {chart or '.'} at {rev[:10]}: {e}")
        args = ["template", release, chart or ".", "--namespace", namespace]
        for vf in value_files:
            args += ["-f", vf]
        if values:
            inline = Path(tmp) / "values.yaml"
            inline.write_text(values)
            args += ["-f", str(inline)]
        for name, value, force in parameters:
            args += ["--set-string" if force else "--set", f"{name}={value}"]
        tool_runs["helm"] += 1
        try:
            proc = subprocess.run(
                [str(binary), *args],
                cwd=root,
                env=tool_env(Path(tmp) / "home"),
                capture_output=True,
                timeout=_TIMEOUT,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            return HelmOutput(error=f"helm could not run: {e}")
        if proc.returncode != 0:
            return HelmOutput(error=f"helm template failed: {first_lines(proc.stderr.decode('utf-8', 'replace'))}")
        meta = root / chart / "Chart.yaml" if chart else root / "Chart.yaml"
        try:
            name = str((yaml.safe_load(meta.read_text()) or {}).get("name") or posixpath.basename(chart))
            return HelmOutput(docs=_split_sources(proc.stdout.decode("utf-8", "replace"), chart, name))
        except (OSError, AttributeError, yaml.YAMLError) as e:
            return HelmOutput(error=f"helm output is not YAML: {first_lines(str(e))}")
