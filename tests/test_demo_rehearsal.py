"""The demo is the rehearsal: `gitops-nb demo` prints a rollback command, it works verbatim, `--reset` undoes it.

Everything real: the demo's bare origin and clone, the sandbox's Argo CD, the runbook's notebooks run
by papermill in a subprocess, exactly as a user would type them.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gitops_nb import Cluster, incident_records
from gitops_nb.act.selfheal import PAUSE_ANNOTATIONS
from gitops_nb.sandbox.demo import BAD_DEPLOY

from .conftest import git, remove_app

pytestmark = pytest.mark.sandbox

GOOD_TAG = "2026.3.18-a1b9f04"  # checkout-api production's tag before the bad bump
BAD_TAG = BAD_DEPLOY[2]
DEMO_APPS = {  # Application -> destination namespace
    "checkout-api-staging": "checkout-staging",
    "checkout-api-production": "checkout-production",
    "payments-worker-production": "payments-production",
    "web-frontend-staging": "web-staging",
    "web-frontend-production": "web-production",
}


def _gitops_nb(env: dict[str, str], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    """The installed `gitops-nb` command (what scripts/demo.sh calls), timed."""
    t = time.monotonic()
    res = subprocess.run(
        [str(Path(sys.executable).parent / "gitops-nb"), *args], env=env, capture_output=True, text=True
    )
    return res, time.monotonic() - t


def _rehearsal(stdout: str) -> tuple[list[str], dict[str, str], Path]:
    """The printed rollback command (split as a shell would), its -p parameters, and the promised report."""
    line = next(x for x in stdout.splitlines() if " runbook run rollback-by-revert " in x)
    argv = shlex.split(line)
    params = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv) if a == "-p")
    report = Path(next(x for x in stdout.splitlines() if x.startswith("the report will be: ")).split(": ", 1)[1])
    return argv, params, report


def _image(api) -> str:  # type: ignore[no-untyped-def]
    from kubernetes import client

    dep = client.AppsV1Api(api).read_namespaced_deployment("checkout-api", "checkout-production")
    return str(dep.spec.template.spec.containers[0].image)


def test_demo_prints_a_rollback_rehearsal_that_works_and_reset_brings_the_incident_back(
    sandbox,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    env = {
        **os.environ,
        "GITOPS_NB_STATE": str(sandbox.state),  # the session's sandbox, wherever it runs
        "GITOPS_NB_SANDBOX_PORT_BASE": str(sandbox.ports.base),
    }
    work = tmp_path / "demo"
    api = sandbox.api_client()
    c = Cluster(kubeconfig=str(sandbox.kubeconfig))
    try:
        demo, took = _gitops_nb(env, "demo", "--workdir", str(work), "--no-run")
        assert demo.returncode == 0, demo.stderr[-3000:]
        print(f"\n[timing] gitops-nb demo --no-run: {took:.1f}s")
        argv, p, report = _rehearsal(demo.stdout)
        clone, origin = work / "deploy-config", work / "deploy-config.git"
        assert argv[argv.index("--incident") + 1] == "DEMO-1" and p["confirm"] == "true"
        assert Path(p["repo_path"]) == clone and p["app"] == "checkout-api-production"
        assert p["kubeconfig"] == str(sandbox.kubeconfig) and p["kube_context"] == "gitops-nb-sandbox"
        assert report == work / "incidents" / "DEMO-1" / "03-post_incident_report.html"
        # the way teams work: Argo CD reads the bare origin; the clone pushed the incident's commits there
        bad = p["sha"]
        assert git(origin, "rev-parse", "--is-bare-repository").strip() == "true"
        assert git(origin, "rev-parse", "main").strip() == bad == git(clone, "rev-parse", "HEAD").strip()
        assert git(clone, "rev-parse", "--abbrev-ref", "main@{upstream}").strip() == "origin/main"
        for name in ("checkout-api-production", "web-frontend-staging"):
            assert c.raw_application(name)["spec"]["source"]["repoURL"] == f"file://{origin}"
        assert c.raw_application("checkout-api-production")["status"]["sync"]["revision"] == bad
        assert _image(api) == f"ghcr.io/acme/checkout-api:{BAD_TAG}"

        # the printed command, verbatim
        t = time.monotonic()
        run = subprocess.run(argv, env=env, capture_output=True, text=True)
        print(f"[timing] printed rollback command: {time.monotonic() - t:.1f}s")
        assert run.returncode == 0, run.stderr[-3000:]
        recs = incident_records(report.parent)
        assert list(recs["action"]) == ["pause-self-heal", "revert", "refresh", "resume-self-heal"]
        assert not recs["dry_run"].any() and recs["changed"].all()
        new = recs.set_index("action").loc["revert", "after"]
        # the revert is on the origin, made in the clone, with the incident's trailer
        assert git(origin, "rev-parse", "main").strip() == new == git(clone, "rev-parse", "HEAD").strip()
        assert git(origin, "rev-parse", f"{new}^").strip() == bad
        msg = git(origin, "log", "-1", "--format=%B", new)
        assert f"This reverts commit {bad}." in msg and "Incident: DEMO-1" in msg
        # Argo CD converged at exactly the revert; self-heal is back as it was
        raw = c.raw_application("checkout-api-production")
        st = raw["status"]
        assert (st["sync"]["status"], st["sync"]["revision"], st["health"]["status"]) == ("Synced", new, "Healthy")
        assert st["operationState"]["syncResult"]["revision"] == new
        assert raw["spec"]["syncPolicy"]["automated"]["selfHeal"] is True
        assert not set(PAUSE_ANNOTATIONS) & set(raw["metadata"].get("annotations") or {})
        assert _image(api) == f"ghcr.io/acme/checkout-api:{GOOD_TAG}"
        # the post-incident report, where the demo said it would be, shows every action
        html = report.read_text()
        for action in ("pause-self-heal", "revert", "refresh", "resume-self-heal"):
            assert action in html
        assert new in html

        # reset, as printed: the incident is back, to rehearse again
        hint = next(x for x in demo.stdout.splitlines() if "--reset` puts the incident back" in x)
        t = time.monotonic()
        reset = subprocess.run(shlex.split(hint.split("`")[1]), env=env, capture_output=True, text=True)
        assert reset.returncode == 0, reset.stderr[-3000:]
        print(f"[timing] printed gitops-nb demo --reset: {time.monotonic() - t:.1f}s")
        argv2, p2, report2 = _rehearsal(reset.stdout)
        again = p2["sha"]
        assert argv2[argv2.index("--incident") + 1] == "DEMO-2" and report2.parent.name == "DEMO-2"
        assert again not in (bad, new) and p2["app"] == "checkout-api-production"
        assert (
            git(origin, "rev-parse", "main").strip() == again and git(origin, "rev-parse", f"{again}^").strip() == new
        )
        assert f'newTag: "{BAD_TAG}"' in git(
            origin, "show", f"{again}:apps/checkout-api/overlays/production/kustomization.yaml"
        )
        raw = c.raw_application("checkout-api-production")
        assert raw["status"]["sync"]["revision"] == again and raw["status"]["health"]["status"] == "Healthy"
        assert raw["spec"]["syncPolicy"]["automated"]["selfHeal"] is True
        assert _image(api) == f"ghcr.io/acme/checkout-api:{BAD_TAG}"
    finally:  # the demo's Applications and namespaces: a reused sandbox does not keep them
        for app, ns in DEMO_APPS.items():
            remove_app(api, app, ns)
