"""Least privilege: `gitops-nb rbac`'s two roles, bound to ServiceAccounts on the sandbox, with their tokens."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitops_nb.cluster.rbac import RUNBOOK_ROLES, investigator_role, responder_role

from .conftest import unique
from .test_fleet import _cleanup, _spoke_app, spokes  # noqa: F401 - spokes: the fixture


def test_rbac_prints_a_read_only_investigator_and_a_patch_only_responder() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "gitops_nb", "rbac", "--namespace", "argo"], capture_output=True, text=True, check=True
    ).stdout
    docs = [d for d in yaml.safe_load_all(out) if d]
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"ClusterRole", "Role"}
    reader = kinds["ClusterRole"]
    assert {v for r in reader["rules"] for v in r["verbs"]} == {"get", "list", "watch"}
    assert not [r for r in reader["rules"] if "secrets" in r["resources"] or "*" in r["resources"]]
    responder = kinds["Role"]
    assert responder["metadata"]["namespace"] == "argo"
    (rule,) = responder["rules"]
    assert rule["apiGroups"] == ["argoproj.io"] and rule["resources"] == ["applications"]
    assert "patch" in rule["verbs"] and not {"create", "delete", "update", "*"} & set(rule["verbs"])
    for book in RUNBOOK_ROLES:  # every shipped runbook is documented
        assert f"#   {book}: " in out
    shipped = {p.stem for p in (Path(__file__).resolve().parent.parent / "runbooks").glob("*.yaml")}
    assert shipped == set(RUNBOOK_ROLES)


def _account(api: Any, role: dict[str, Any]) -> tuple[str, list[Any]]:
    """A ServiceAccount bound to ``role`` on the cluster of ``api``: its token (TokenRequest), what to delete after."""
    from kubernetes import client

    core, rbac = client.CoreV1Api(api), client.RbacAuthorizationV1Api(api)
    sa = unique("gitops-nb-sa")
    core.create_namespaced_service_account("default", {"metadata": {"name": sa}})
    role = {**role, "metadata": {**role["metadata"], "name": sa}}
    binding = {
        "metadata": {"name": sa},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role["kind"], "name": sa},
        "subjects": [{"kind": "ServiceAccount", "name": sa, "namespace": "default"}],
    }
    if role["kind"] == "ClusterRole":
        rbac.create_cluster_role(role)
        rbac.create_cluster_role_binding(binding)
        undo = [lambda: rbac.delete_cluster_role_binding(sa), lambda: rbac.delete_cluster_role(sa)]
    else:
        ns = role["metadata"]["namespace"]
        rbac.create_namespaced_role(ns, role)
        rbac.create_namespaced_role_binding(ns, binding)
        undo = [lambda: rbac.delete_namespaced_role_binding(sa, ns), lambda: rbac.delete_namespaced_role(sa, ns)]
    undo.append(lambda: core.delete_namespaced_service_account(sa, "default"))
    token = core.create_namespaced_service_account_token(sa, "default", {"spec": {"expirationSeconds": 3600}})
    return token.status.token, undo


def _kubeconfig(sandbox: Any, tmp: Path, who: str, tokens: dict[str, str]) -> str:
    """The sandbox's kubeconfig with each context's user replaced by ``tokens[context]`` (files, 0600)."""
    conf = yaml.safe_load(Path(sandbox.kubeconfig).read_text())
    user_of = {c["name"]: c["context"]["user"] for c in conf["contexts"]}
    for ctx, token in tokens.items():
        f = tmp / f"{who}-{ctx}.token"
        f.write_text(token)
        f.chmod(0o600)
        for u in conf["users"]:
            if u["name"] == user_of[ctx]:
                u["user"] = {"tokenFile": str(f)}
    conf["users"] = [u for u in conf["users"] if "tokenFile" in u["user"] and str(tmp) in u["user"]["tokenFile"]]
    conf["contexts"] = [c for c in conf["contexts"] if c["name"] in tokens]
    path = tmp / f"{who}.kubeconfig"
    path.write_text(yaml.safe_dump(conf))
    return str(path)


@pytest.fixture
def roles(spokes, tmp_path: Path):  # type: ignore[no-untyped-def]
    """An app (on the hub, deploying to spoke 1); an investigator's kubeconfig (the role on the hub and on
    spoke 1, each cluster's own ServiceAccount token) and a responder's (the Role on the hub)."""
    app = _spoke_app(spokes, tmp_path, 1, by="server")
    hub_inv, undo1 = _account(spokes.api_client(), investigator_role())
    spoke_inv, undo2 = _account(spokes.spoke_api_client(1), investigator_role())
    resp, undo3 = _account(spokes.api_client(), responder_role())
    inv = _kubeconfig(spokes, tmp_path, "investigator", {"gitops-nb-sandbox": hub_inv, "gitops-nb-spoke-1": spoke_inv})
    yield {
        "app": app,
        "investigator": inv,
        "responder": _kubeconfig(spokes, tmp_path, "responder", {"gitops-nb-sandbox": resp}),
    }
    for u in undo1 + undo2 + undo3:
        u()
    _cleanup(spokes, app)


@pytest.mark.sandbox
def test_the_investigator_reads_everything_and_may_patch_nothing(roles: dict, spokes) -> None:  # type: ignore[no-untyped-def]
    from gitops_nb import Cluster, ForbiddenError, drift, manual_edits, pause_self_heal, what_changed

    app = roles["app"]
    hub = Cluster("gitops-nb-sandbox", kubeconfig=roles["investigator"])
    assert app["name"] in set(hub.applications()["name"])
    hub.history(), hub.operations(), hub.app_resources(app["name"]), hub.events(None), hub.rollouts(None)
    edits = hub.field_edits(None)
    assert edits.attrs["skipped"] == ["secrets: forbidden for this role"]  # no Secret access, said so
    drift(hub, app["work"].path)  # reads the live objects on the spoke
    assert manual_edits(hub).attrs["failures"] == []
    tl = what_changed(app["work"].path, at="now", window="15m", apps=[app["name"]], cluster=hub)
    assert len(tl[tl["kind"] == "deploy"]) >= 1 and len(tl[tl["kind"] == "rollout"]) >= 1  # hub and spoke read
    assert tl.attrs["failures"] == [] and set(tl.attrs["skipped"]) == {
        "gitops-nb-sandbox: secrets: forbidden for this role",
        "gitops-nb-spoke-1: secrets: forbidden for this role",
    }
    before = hub.raw_application(app["name"])["spec"]["syncPolicy"]
    with pytest.raises(ForbiddenError, match=r"forbidden: patch applications\.argoproj\.io.*allows 'patch'") as e:
        pause_self_heal(hub, app["name"], "INC-14: least privilege", mode="auto-sync", dry_run=False)
    assert e.value.verb == "patch" and e.value.status == 403
    after = Cluster("gitops-nb-sandbox", kubeconfig=str(spokes.kubeconfig)).raw_application(app["name"])
    assert after["spec"]["syncPolicy"] == before  # changed nothing
    assert not any(k.startswith("gitops-nb") for k in (after["metadata"].get("annotations") or {}))


@pytest.mark.sandbox
def test_the_responder_pauses_resumes_refreshes_and_syncs_and_reads_nothing_else(roles: dict, spokes) -> None:  # type: ignore[no-untyped-def]
    from gitops_nb import Cluster, ForbiddenError, pause_self_heal, refresh, resume_self_heal, sync

    app = roles["app"]["name"]
    c = Cluster("gitops-nb-sandbox", kubeconfig=roles["responder"])
    admin = Cluster("gitops-nb-sandbox", kubeconfig=str(spokes.kubeconfig))
    before = admin.raw_application(app)["spec"]["syncPolicy"]
    rec = pause_self_heal(c, app, "INC-14: responder", mode="auto-sync", dry_run=False)
    assert bool(rec["changed"].iloc[0])
    assert admin.applications().set_index("name").loc[app, "paused_by"]
    assert bool(resume_self_heal(c, app, dry_run=False)["changed"].iloc[0])
    assert admin.raw_application(app)["spec"]["syncPolicy"] == before  # restored exactly
    assert bool(refresh(c, app)["changed"].iloc[0])
    assert bool(sync(c, app, dry_run=False)["changed"].iloc[0])
    with pytest.raises(ForbiddenError, match=r"forbidden: list replicasets\.apps.*allows 'list'") as e:
        c.rollouts("default")
    assert e.value.verb == "list"
    with pytest.raises(ForbiddenError, match="list"):
        c.events(None)


@pytest.mark.sandbox
def test_the_notebooks_and_the_console_investigate_with_the_investigators_token(roles: dict, tmp_path: Path) -> None:
    from gitops_nb import IncidentConsole, load_results

    app = roles["app"]
    res = subprocess.run(
        [
            *(str(Path(sys.executable).with_name("papermill")), "notebooks/what_changed.ipynb"),
            *(str(tmp_path / "wc.ipynb"), "-k", "python3", "-p", "repo_path", str(app["work"].path)),
            *("-p", "window", "15m", "-p", "apps", app["name"], "-p", "kube_context", "gitops-nb-sandbox"),
            *("-p", "contexts", "gitops-nb-spoke-1", "-p", "kubeconfig", roles["investigator"]),
            *("-p", "output_dir", str(tmp_path / "wc")),
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    frames, _ = load_results(tmp_path / "wc")
    assert len(frames["timeline"][frames["timeline"]["kind"] == "deploy"]) >= 1
    con = IncidentConsole(
        repo_path=str(app["work"].path),
        kube_context="gitops-nb-sandbox",
        kubeconfig=roles["investigator"],
        window="15m",
    )
    con.investigate()
    assert con.timeline is not None and "likely culprits" in con.status.value, con.status.value
