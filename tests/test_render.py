"""rendered_diff: the real kustomize and helm (the sandbox's build) on real git repos; and, on the sandbox,
Argo CD's repo-server rendering Helm and the ApplicationSet controller's git directory generator."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest

from gitops_nb import rendered_diff
from gitops_nb.investigate import render
from gitops_nb.sandbox.control import Sandbox
from gitops_nb.sandbox.demo import RepoWriter

from .conftest import app_files, remove_app, tree_state, unique

NOW = pd.Timestamp("2026-03-18T12:00:00Z")
SECRET = "hunter2-very-secret"


@pytest.fixture(scope="module")
def bin_dir() -> Path:
    """The sandbox's bin dir (kustomize and helm built from their Go modules)."""
    return Sandbox().bin


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A private render cache (disk), and an empty memory cache."""
    render._memo.clear()
    return tmp_path / "renders"


def _base(memory: str = "256Mi") -> dict[str, str]:
    return {
        "apps/web/base/kustomization.yaml": "resources:\n- deployment.yaml\n",
        "apps/web/base/deployment.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 1\n"
            "  selector:\n    matchLabels: {app: web}\n  template:\n    metadata:\n      labels: {app: web}\n"
            "    spec:\n      containers:\n      - name: web\n        image: ghcr.io/acme/web:latest\n"
            f"        resources:\n          limits:\n            memory: {memory}\n"
        ),
    }


def _overlay(env: str) -> dict[str, str]:
    return {
        f"apps/web/overlays/{env}/kustomization.yaml": (
            f"resources:\n- ../../base\nnamespace: web-{env}\nnamePrefix: {env}-\n"
            f'images:\n- name: ghcr.io/acme/web\n  newTag: "1.0.{len(env)}"\n'
        )
    }


@pytest.fixture
def kustomize_repo(tmp_path: Path) -> tuple[RepoWriter, str]:
    """A base used by three overlays; the last commit raises the base's memory limit."""
    w = RepoWriter(tmp_path / "deploy-config")
    files = {**_base(), **_overlay("dev"), **_overlay("staging"), **_overlay("prod"), **app_files("other", "1.0")}
    w.commit("initial", when=NOW, files=files)
    sha = w.commit("web: more memory", when=NOW + pd.Timedelta("1h"), files=_base("512Mi"))
    return w, sha


def test_a_base_change_shows_in_each_overlays_rendered_deployment(
    kustomize_repo: tuple[RepoWriter, str], bin_dir: Path, cache: Path
) -> None:
    w, sha = kustomize_repo
    before = tree_state(w.path)
    d = rendered_diff(w.path, sha, "apps/web/overlays/prod", bin_dir=bin_dir, cache=cache)
    assert d[["kind", "namespace", "name", "field", "old", "new", "change"]].to_dict("records") == [
        {
            "kind": "Deployment",
            "namespace": "web-prod",
            "name": "prod-web",  # as rendered: the overlay's namePrefix and namespace applied
            "field": "spec.template.spec.containers[web].resources.limits.memory",
            "old": "256Mi",
            "new": "512Mi",
            "change": "modified",
        }
    ]
    assert set(d["tool"]) == {"kustomize"} and set(d["sha"]) == {sha} and d["parent"].notna().all()
    # every app the commit reaches (the base is in three overlays, not in apps/other)
    every = rendered_diff(w.path, sha, bin_dir=bin_dir, cache=cache)
    assert sorted(every["app"]) == [f"apps/web/overlays/{e}" for e in ("dev", "prod", "staging")]
    assert set(every["field"]) == {"spec.template.spec.containers[web].resources.limits.memory"}
    assert tree_state(w.path) == before  # the user's work tree is never touched
    assert "deploy-config" not in w.git("worktree", "list").split("\n", 1)[-1]


def _chart(tag: str = "1.0.0", secret: str = SECRET, template: str | None = None) -> dict[str, str | None]:
    deployment = template or (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n"
        "  namespace: {{ .Release.Namespace }}\nspec:\n  replicas: {{ .Values.replicas }}\n"
        "  selector:\n    matchLabels: {app: {{ .Release.Name }}}\n  template:\n    metadata:\n"
        "      labels: {app: {{ .Release.Name }}}\n    spec:\n      containers:\n      - name: web\n"
        '        image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"\n'
    )
    return {
        "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\n",
        "charts/web/values.yaml": "replicas: 1\nimage:\n  repository: ghcr.io/acme/web\n  tag: latest\npassword: x\n",
        "charts/web/templates/deployment.yaml": deployment,
        "charts/web/templates/secret.yaml": (
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Release.Name }}-db\n"
            "stringData:\n  password: {{ .Values.password | quote }}\n"
        ),
        "envs/prod/values.yaml": f'replicas: 2\nimage:\n  tag: "{tag}"\npassword: "{secret}"\n',
    }


def _helm_app(name: str = "web", value_files: tuple[str, ...] = ("values.yaml", "../../envs/prod/values.yaml")) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "source": {"repoURL": "file:///x", "path": "charts/web", "helm": {"valueFiles": list(value_files)}},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": "web-prod"},
        },
    }


def test_a_helm_values_change_shows_as_the_deployments_image(tmp_path: Path, bin_dir: Path, cache: Path) -> None:
    w = RepoWriter(tmp_path / "deploy-config")
    w.commit("chart", when=NOW, files=_chart())
    sha = w.commit("web 1.1.0", when=NOW + pd.Timedelta("1h"), files=_chart("1.1.0", secret=SECRET + "-rotated"))
    d = rendered_diff(w.path, sha, _helm_app(), bin_dir=bin_dir, cache=cache)
    rows = {(r["kind"], r["field"]): r for r in d.to_dict("records")}
    image = rows[("Deployment", "spec.template.spec.containers[web].image")]
    assert (image["old"], image["new"], image["change"]) == (
        "ghcr.io/acme/web:1.0.0",
        "ghcr.io/acme/web:1.1.0",
        "modified",
    )
    assert (image["app"], image["tool"], image["namespace"], image["name"]) == ("web", "helm", "web-prod", "web")
    # the rotated password: seen to change, never shown, and never written to the cache
    pw = rows[("Secret", "stringData.password")]
    assert pw["change"] == "modified" and "redacted" in pw["old"] and "redacted" in pw["new"]
    assert len(d) == 2
    assert SECRET not in d.to_json()
    assert all(SECRET not in f.read_text() for f in cache.rglob("*.json"))
    # a Cluster.applications() row carries the same source (with its helm block) as the Application
    row = pd.Series(
        {
            "name": "web",
            "path": "charts/web",
            "dest_namespace": "web-prod",
            "sources": [{"path": "charts/web", "helm": _helm_app()["spec"]["source"]["helm"]}],
        }
    )
    assert rendered_diff(w.path, sha, row, bin_dir=bin_dir, cache=cache)[["kind", "field"]].equals(d[["kind", "field"]])


def test_render_errors_are_rows_and_the_other_apps_are_still_diffed(tmp_path: Path, bin_dir: Path, cache: Path) -> None:
    w = RepoWriter(tmp_path / "deploy-config")
    w.commit("charts", when=NOW, files={**_chart(), **_base(), **_overlay("prod")})
    broken_template = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }\n"
    sha = w.commit(
        "break things",
        when=NOW + pd.Timedelta("1h"),
        files={
            **{k.replace("charts/web", "charts/tpl"): v for k, v in _chart(template=broken_template).items()},
            "charts/nometa/Chart.yaml": "apiVersion: v2\nname: nometa\n",  # no version: not a valid chart
            "charts/nometa/templates/cm.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
            "apps/web/overlays/broken/kustomization.yaml": "resources:\n- ../../base\n- missing.yaml\n",
            **_base("1Gi"),
        },
    )
    apps = [
        {**_helm_app("tpl"), "spec": {**_helm_app()["spec"], "source": {"path": "charts/tpl"}}},
        "charts/nometa",
        _helm_app("novalues", ("values.yaml", "values-missing.yaml")),
        "apps/web/overlays/broken",
        "apps/web/overlays/prod",
    ]
    d = rendered_diff(w.path, sha, apps, bin_dir=bin_dir, cache=cache)
    errors = d[d["change"] == "render-error"].set_index("app")["error"].to_dict()
    assert set(errors) == {"tpl", "charts/nometa", "novalues", "apps/web/overlays/broken"}
    assert "parse error" in errors["tpl"]
    assert "version is required" in errors["charts/nometa"]
    assert "values-missing.yaml" in errors["novalues"] and "at the commit" in errors["novalues"]
    assert "missing.yaml" in errors["apps/web/overlays/broken"]
    assert all(len(e.splitlines()) <= 7 for e in errors.values())
    ok = d[d["app"] == "apps/web/overlays/prod"]
    assert ok[["field", "old", "new"]].values.tolist() == [
        ["spec.template.spec.containers[web].resources.limits.memory", "256Mi", "1Gi"]
    ]


def test_renders_are_cached_by_the_tree_of_the_apps_inputs(
    kustomize_repo: tuple[RepoWriter, str], bin_dir: Path, cache: Path
) -> None:
    w, sha = kustomize_repo
    runs = render.tool_runs["kustomize"]
    first = rendered_diff(w.path, sha, bin_dir=bin_dir, cache=cache)
    assert render.tool_runs["kustomize"] - runs == 6  # three overlays, at the parent and at the commit
    runs = render.tool_runs["kustomize"]
    assert rendered_diff(w.path, sha, bin_dir=bin_dir, cache=cache).equals(first)
    assert render.tool_runs["kustomize"] == runs  # from memory
    render._memo.clear()
    assert rendered_diff(w.path, sha, bin_dir=bin_dir, cache=cache).equals(first)
    assert render.tool_runs["kustomize"] == runs  # from disk
    assert len(list(cache.rglob("*.json"))) == 6
    # a later commit to another app: web's inputs are the same tree, so its render is not run again
    later = w.commit("other 1.1", when=NOW + pd.Timedelta("2h"), files=app_files("other", "1.1"))
    d = rendered_diff(
        w.path, later, ["apps/web/overlays/prod", "apps/other/overlays/prod"], bin_dir=bin_dir, cache=cache
    )
    assert render.tool_runs["kustomize"] == runs + 2  # only apps/other, at both sides
    assert set(d["app"]) == {"apps/other/overlays/prod"}
    # no cache: the tool runs every time
    rendered_diff(w.path, sha, "apps/web/overlays/prod", bin_dir=bin_dir, cache=False)
    assert render.tool_runs["kustomize"] == runs + 4
    entry = json.loads(next(cache.rglob("*.json")).read_text())
    assert set(entry) == {"tool", "docs", "error"}


def test_what_changed_can_add_the_rendered_diff_of_its_top_culprits(
    kustomize_repo: tuple[RepoWriter, str], bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gitops_nb import what_changed

    w, sha = kustomize_repo
    monkeypatch.setenv("GITOPS_NB_KUSTOMIZE", str(bin_dir / "kustomize"))
    monkeypatch.setenv("GITOPS_NB_CACHE", str(tmp_path / "cache"))
    at = NOW + pd.Timedelta("90m")
    plain = what_changed(w.path, at=at, window="3h")
    tl = what_changed(w.path, at=at, window="3h", rendered=1)
    top = tl[tl["rank"] == 1].iloc[0]
    assert top["sha"] == sha
    assert (
        "rendered: Deployment/dev-web spec.template.spec.containers[web].resources.limits.memory modified"
        in top["detail"]
    )
    assert "256Mi → 512Mi" in top["detail"]
    assert top["detail"].startswith(plain[plain["rank"] == 1].iloc[0]["detail"])
    assert tl[tl["rank"] == 2].iloc[0]["detail"] == plain[plain["rank"] == 2].iloc[0]["detail"]  # only the top 1


# -- on the sandbox: Argo CD renders Helm; the ApplicationSet controller makes apps ------------------------


@pytest.mark.sandbox
def test_a_helm_app_with_two_values_files_syncs(sandbox: Sandbox, tmp_path: Path) -> None:
    from kubernetes import client

    from gitops_nb.cluster.argocd import application_manifest, apply_application, wait_app

    w = RepoWriter(tmp_path / "deploy-config")
    sha = w.commit("chart", when=pd.Timestamp.now(tz="UTC"), files=_chart("1.2.3"))
    name, ns = unique("t-helm"), unique("t-helm-ns")
    api = sandbox.api_client()
    manifest = application_manifest(name, f"file://{w.path}", "charts/web", ns)
    manifest["spec"]["source"]["helm"] = {
        "releaseName": "web",
        "valueFiles": ["values.yaml", "../../envs/prod/values.yaml"],
    }
    apply_application(api, manifest)
    try:
        state = wait_app(api, name, revision=sha, timeout=180)
        assert (state["sync_status"], state["health_status"]) == ("Synced", "Healthy")
        dep = client.AppsV1Api(api).read_namespaced_deployment("web", ns)
        assert dep.spec.replicas == 2  # from the second values file
        assert dep.spec.template.spec.containers[0].image == "ghcr.io/acme/web:1.2.3"
    finally:
        remove_app(api, name, ns)


def _appset(name: str, repo: Path, suffix: str) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "ApplicationSet",
        "metadata": {"name": name, "namespace": "argocd"},
        "spec": {
            "goTemplate": True,
            "generators": [
                {
                    "git": {
                        "repoURL": f"file://{repo}",
                        "revision": "main",
                        "directories": [{"path": "apps/*"}],
                        "requeueAfterSeconds": 5,
                    }
                }
            ],
            "template": {
                "metadata": {"name": "{{.path.basename}}-" + suffix},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": f"file://{repo}", "targetRevision": "main", "path": "{{.path.path}}/base"},
                    "destination": {
                        "server": "https://kubernetes.default.svc",
                        "namespace": "{{.path.basename}}-" + suffix,
                    },
                    "syncPolicy": {"automated": {}, "syncOptions": ["CreateNamespace=true"]},
                },
            },
        },
    }


@pytest.mark.sandbox
def test_an_applicationset_git_directory_generator_makes_one_app_per_directory(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    from kubernetes import client

    w = RepoWriter(tmp_path / "deploy-config")
    files = {k: v for k, v in {**app_files("alpha", "1.0"), **app_files("beta", "1.0")}.items() if "/base/" in k}
    w.commit("two apps", when=pd.Timestamp.now(tz="UTC"), files=files)
    suffix = unique("as")[3:]
    name = f"t-appset-{suffix}"
    api = sandbox.api_client()
    custom = client.CustomObjectsApi(api)
    custom.create_namespaced_custom_object(
        "argoproj.io", "v1alpha1", "argocd", "applicationsets", _appset(name, w.path, suffix)
    )

    def apps() -> set[str]:
        items = custom.list_namespaced_custom_object("argoproj.io", "v1alpha1", "argocd", "applications")["items"]
        return {a["metadata"]["name"] for a in items if a["metadata"]["name"].endswith(suffix)}

    def wait_for(want: set[str], timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and apps() != want:
            time.sleep(1)
        assert apps() == want

    try:
        wait_for({f"alpha-{suffix}", f"beta-{suffix}"})
        owner = custom.get_namespaced_custom_object(
            "argoproj.io", "v1alpha1", "argocd", "applications", f"alpha-{suffix}"
        )
        assert owner["metadata"]["ownerReferences"][0]["kind"] == "ApplicationSet"
        w.commit(
            "a third app",
            when=pd.Timestamp.now(tz="UTC"),
            files={k: v for k, v in app_files("gamma", "1.0").items() if "/base/" in k},
        )
        wait_for({f"alpha-{suffix}", f"beta-{suffix}", f"gamma-{suffix}"})
    finally:
        custom.delete_namespaced_custom_object("argoproj.io", "v1alpha1", "argocd", "applicationsets", name)
        core = client.CoreV1Api(api)
        for d in ("alpha", "beta", "gamma"):
            try:
                core.delete_namespace(f"{d}-{suffix}")
            except client.exceptions.ApiException as e:
                if e.status != 404:
                    raise
