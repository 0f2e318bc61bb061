"""Record the demo incident on the sandbox as a text fixture for the fast tests (tests/data/demo/).

    .venv/bin/python tools/record_snapshot.py        # needs the sandbox: starts it if it is down

Writes ``tests/data/demo/repo.fi`` (the demo deploy-config repo as a ``git fast-export`` stream: text,
and re-importing it gives the very same shas) and ``tests/data/demo/evidence/`` (a :func:`gitops_nb.snapshot`
of the sandbox in JSON), plus ``facts.json`` (T, the bad sha, the apps, the manual edit). The fast
tests (tests/test_recorded.py) run the timeline, ranking, drift and report logic on it in milliseconds.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import gitops_nb as g
from gitops_nb.sandbox import Sandbox, main_progress
from gitops_nb.sandbox.demo import deploy_demo

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "tests" / "data" / "demo"


def main() -> None:
    sb = Sandbox()
    sb.up(progress=main_progress)
    with tempfile.TemporaryDirectory() as work:
        dep = deploy_demo(sb, work, progress=main_progress)
        cluster = g.Cluster("gitops-nb-sandbox", kubeconfig=str(sb.kubeconfig))
        if OUT.exists():
            shutil.rmtree(OUT)
        OUT.mkdir(parents=True)
        names = list(dep.apps)
        g.snapshot(cluster, OUT / "evidence", formats=("json",))
        stream = subprocess.run(
            ["git", "fast-export", "--all", "--signed-tags=strip", "--reencode=yes"],
            cwd=dep.repo.path,
            check=True,
            capture_output=True,
        ).stdout
        (OUT / "repo.fi").write_bytes(stream)
        facts = {
            "incident_at": dep.incident_at.isoformat(),
            "bad_sha": dep.bad_sha,
            "apps": dep.apps,
            "deploys": dep.deploys,
            "edit": dep.edit,
            "head": dep.repo.commits,
            "applications": names,
        }
        (OUT / "facts.json").write_text(json.dumps(facts, indent=1, sort_keys=True, default=str) + "\n")
        for name in names:  # leave the sandbox as it was: the demo's Applications go
            cluster.call("delete", f"applications.argoproj.io/{name}", lambda n=name: _delete(cluster, n))
    main_progress(f"recorded {OUT}")


def _delete(cluster: g.Cluster, name: str) -> None:
    from kubernetes import client

    client.CustomObjectsApi(cluster.api).delete_namespaced_custom_object(
        "argoproj.io", "v1alpha1", cluster.argocd_namespace, "applications", name
    )


if __name__ == "__main__":
    main()
