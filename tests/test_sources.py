"""Every Argo CD source type: the files each app is built from, learned from the cluster or from git.

The fixture repo is shaped like a real Argo CD monorepo: Helm charts (one with a local library
dependency) with per-environment values, a chart from a Helm repository with values from this repo
(multi-source ``$values``), plain directories, jsonnet, Kustomize, a plugin, an app-of-apps chart,
and ApplicationSets with git directory and git file generators.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gitops_nb import DeployRepo, schema, what_changed
from gitops_nb.git.sources import glob_match
from gitops_nb.sandbox.demo import ALICE, BOB, RepoWriter

from .conftest import T0

REPO = "https://github.com/acme/deploy.git"


def chart(name: str, deps: str = "") -> str:
    return f"apiVersion: v2\nname: {name}\nversion: 1.0.0\nappVersion: '1.0'\n{deps}"


def values(tag: str, replicas: int = 2) -> str:
    return f"replicaCount: {replicas}\nimage:\n  repository: ghcr.io/acme/app\n  tag: {tag}\n"


TEMPLATE = """apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "web.fullname" . }}
spec:
  replicas: {{ .Values.replicaCount }}
  template:
    spec:
      containers:
      - name: app
        image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
"""


def deploy(name: str, tag: str) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  template:
    spec:
      containers:
      - name: {name}
        image: ghcr.io/acme/{name}:{tag}
"""


def application(name: str, source: str, annotations: str = "") -> str:
    return f"""apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  namespace: argocd
{annotations}spec:
  project: default
  destination:
    server: https://kubernetes.default.svc
    namespace: {name}
{source}"""


def helm_app(name: str, path: str, value_files: list[str]) -> str:
    vf = "".join(f"\n      - {v}" for v in value_files)
    return f"""apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {name}
  namespace: argocd
spec:
  project: default
  destination:
    server: {{{{ .Values.destination }}}}
    namespace: {name}
  source:
    repoURL: {{{{ .Values.repoURL }}}}
    targetRevision: {{{{ .Values.targetRevision }}}}
    path: {path}
    helm:
      releaseName: {name}
      valueFiles:{vf}
"""


REDIS = """apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: redis
  namespace: argocd
spec:
  project: default
  destination:
    server: {{ .Values.destination }}
    namespace: redis
  sources:
  - repoURL: https://charts.bitnami.com/bitnami
    chart: redis
    targetRevision: 18.1.0
    helm:
      valueFiles:
      - $values/envs/prod/redis.yaml
  - repoURL: {{ .Values.repoURL }}
    targetRevision: main
    ref: values
"""

SERVICES_APPSET = f"""apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: services
  namespace: argocd
spec:
  generators:
  - git:
      repoURL: {REPO}
      revision: main
      directories:
      - path: services/*
      - path: services/legacy
        exclude: true
  template:
    metadata:
      name: 'svc-{{{{path.basename}}}}'
    spec:
      project: default
      source:
        repoURL: {REPO}
        targetRevision: main
        path: '{{{{path}}}}'
      destination:
        server: https://kubernetes.default.svc
        namespace: '{{{{path.basename}}}}'
"""

TENANTS_APPSET = f"""apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: tenants
  namespace: argocd
spec:
  goTemplate: true
  generators:
  - git:
      repoURL: {REPO}
      revision: main
      files:
      - path: tenants/*/config.json
  template:
    metadata:
      name: 'tenant-{{{{.tenant.name}}}}'
    spec:
      project: default
      source:
        repoURL: {REPO}
        targetRevision: main
        path: '{{{{.path.path}}}}/manifests'
      destination:
        server: https://kubernetes.default.svc
        namespace: '{{{{.tenant.namespace}}}}'
"""


def src(path: str, **extra: Any) -> str:
    body = f"  source:\n    repoURL: {REPO}\n    targetRevision: main\n    path: {path}\n"
    for k, v in extra.items():
        body += f"    {k}:\n" + "".join(f"      {line}\n" for line in v.splitlines())
    return body


def files(tag: str) -> dict[str, str | None]:
    """The repository at one state; ``tag`` is the image of the seven apps the incident commit bumps."""
    return {
        # an app-of-apps chart: its templates are Applications; repoURL etc. come from its values
        "apps/Chart.yaml": chart("apps"),
        "apps/values.yaml": f"repoURL: {REPO}\ntargetRevision: main\ndestination: https://kubernetes.default.svc\n",
        "apps/templates/web-prod.yaml": helm_app("web-prod", "charts/web", ["values.yaml", "../../envs/prod/web.yaml"]),
        "apps/templates/web-staging.yaml": helm_app("web-staging", "charts/web", ["/envs/staging/web.yaml"]),
        "apps/templates/api.yaml": helm_app("api", "charts/api", []),
        "apps/templates/redis.yaml": REDIS,
        # Helm charts
        "charts/web/Chart.yaml": chart("web"),
        "charts/web/values.yaml": values("1.0.0"),
        "charts/web/templates/deployment.yaml": TEMPLATE,
        "charts/web/templates/_helpers.tpl": '{{- define "web.fullname" -}}{{ .Release.Name }}{{- end }}\n',
        "charts/api/Chart.yaml": chart(
            "api", "dependencies:\n- name: common\n  version: 0.1.0\n  repository: file://../common\n"
        ),
        "charts/api/values.yaml": values(tag),
        "charts/api/templates/deployment.yaml": TEMPLATE,
        "charts/common/Chart.yaml": chart("common") + "type: library\n",
        "charts/common/templates/_labels.tpl": '{{- define "common.labels" -}}app: x{{- end }}\n',
        "envs/prod/web.yaml": values(tag, 4),
        "envs/staging/web.yaml": values(tag, 1),
        "envs/prod/redis.yaml": f"image:\n  tag: {tag}\n",
        # plain directories, jsonnet, Kustomize, a plugin
        "bootstrap/root.yaml": application("root", src("apps")),
        "bootstrap/worker.yaml": application("worker", src("manifests/worker")),
        "bootstrap/batch.yaml": application(
            "batch",
            src("manifests/batch", directory="recurse: true\ninclude: '*.yaml'\nexclude: '{tests/*,*-dev.yaml}'"),
        ),
        "bootstrap/dashboards.yaml": application(
            "dashboards", src("jsonnet/dashboards", directory="jsonnet:\n  libs:\n  - jsonnet/vendor")
        ),
        "bootstrap/checkout.yaml": application("checkout", src("kustomize/checkout/overlays/prod")),
        "bootstrap/payments.yaml": application("payments", src("plugins/payments", plugin="name: sops")),
        "bootstrap/billing.yaml": application(
            "billing",
            src("manifests/billing"),
            "  annotations:\n    argocd.argoproj.io/manifest-generate-paths: .;/shared/billing\n",
        ),
        "bootstrap/services.yaml": SERVICES_APPSET,
        "bootstrap/tenants.yaml": TENANTS_APPSET,
        "manifests/worker/deployment.yaml": deploy("worker", tag),
        "manifests/worker/nested/ignored.yaml": deploy("nested", "1"),
        "manifests/batch/job.yaml": deploy("batch", "1"),
        "manifests/batch/cron/cron.yaml": deploy("cron", "1"),
        "manifests/batch/cron/cron-dev.yaml": deploy("cron-dev", "1"),
        "manifests/batch/tests/test.yaml": deploy("test", "1"),
        "manifests/batch/notes.json": "{}",
        "manifests/billing/deployment.yaml": deploy("billing", "1"),
        "shared/billing/config.yaml": "a: 1\n",
        "shared/other/config.yaml": "a: 1\n",
        "jsonnet/dashboards/main.jsonnet": "local g = import 'grafana.libsonnet'; {}\n",
        "jsonnet/dashboards/panels.libsonnet": "{}\n",
        "jsonnet/vendor/grafana.libsonnet": "{}\n",
        "kustomize/checkout/base/kustomization.yaml": "resources:\n- deployment.yaml\n",
        "kustomize/checkout/base/deployment.yaml": deploy("checkout", "1"),
        "kustomize/checkout/overlays/prod/kustomization.yaml": (
            f"resources:\n- ../../base\nimages:\n- name: ghcr.io/acme/checkout\n  newTag: '{tag}'\n"
        ),
        "plugins/payments/secrets.enc.yaml": "data: x\n",
        "plugins/payments/kustomization.yaml.tmpl": "x\n",
        "services/a/deployment.yaml": deploy("svc-a", tag),
        "services/b/deployment.yaml": deploy("svc-b", "1"),
        "services/legacy/deployment.yaml": deploy("legacy", "1"),
        "tenants/acme/config.json": json.dumps({"tenant": {"name": "acme", "namespace": "acme"}}),
        "tenants/acme/manifests/deploy.yaml": deploy("acme", "1"),
        ".github/workflows/ci.yaml": "on: push\n",
    }


APPS = [
    "api",
    "batch",
    "billing",
    "checkout",
    "dashboards",
    "payments",
    "redis",
    "root",
    "svc-a",
    "svc-b",
    "tenant-acme",
    "web-prod",
    "web-staging",
    "worker",
]
BUMPED = ["api", "checkout", "redis", "svc-a", "web-prod", "web-staging", "worker"]


@pytest.fixture(scope="module")
def monorepo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    path = tmp_path_factory.mktemp("argo") / "deploy"
    w = RepoWriter(path)
    shas = {"initial": w.commit("initial layout", when=T0, author=ALICE, files=files("1.0.0"))}
    shas["bump"] = w.commit("bump images to 2.0.0", when=T0 + pd.Timedelta("1h"), author=BOB, files=files("2.0.0"))
    return path, shas


def by_app(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    return {r["app"]: r for r in df.to_dict("records")}


def test_apps_finds_every_app_with_the_files_of_its_source_type(monorepo: tuple[Path, dict[str, str]]) -> None:
    repo = DeployRepo(monorepo[0])
    df = repo.apps()
    assert list(df.columns) == list(schema.APPS)
    assert sorted(df["app"]) == APPS
    assert df["error"].isna().all(), df[df["error"].notna()][["app", "error"]]
    a = by_app(df)
    # Helm: the chart's files, the chosen value files (relative, ../ and /-rooted), the defining template
    assert a["web-prod"]["source_type"] == "helm"
    assert {"charts/web/templates/deployment.yaml", "charts/web/templates/_helpers.tpl", "envs/prod/web.yaml"} <= set(
        a["web-prod"]["files"]
    )
    assert "envs/staging/web.yaml" not in a["web-prod"]["files"]
    assert "envs/staging/web.yaml" in a["web-staging"]["files"]
    assert a["web-prod"]["kustomization"] == "apps/templates/web-prod.yaml"
    assert "apps/values.yaml" in a["web-prod"]["files"]  # its repoURL and revision come from there
    # a local file:// dependency is built into the chart
    assert "charts/common/templates/_labels.tpl" in a["api"]["files"]
    # a chart from a Helm repository: only the $values file is here
    assert a["redis"]["source_type"] == "helm-repo"
    assert a["redis"]["files"] == ["apps/templates/redis.yaml", "apps/values.yaml", "envs/prod/redis.yaml"]
    assert a["redis"]["remote"] == ["https://charts.bitnami.com/bitnami redis@18.1.0"]
    # directory: top level only without recurse; include/exclude globs relative to the path, * crosses /
    assert a["worker"]["files"] == ["bootstrap/worker.yaml", "manifests/worker/deployment.yaml"]
    assert a["batch"]["files"] == ["bootstrap/batch.yaml", "manifests/batch/cron/cron.yaml", "manifests/batch/job.yaml"]
    # jsonnet: the files in the dir and the libs
    assert a["dashboards"]["source_type"] == "jsonnet"
    assert {"jsonnet/dashboards/panels.libsonnet", "jsonnet/vendor/grafana.libsonnet"} <= set(a["dashboards"]["files"])
    assert a["checkout"]["source_type"] == "kustomize"
    assert "kustomize/checkout/base/deployment.yaml" in a["checkout"]["files"]
    # a Kustomize root an Application builds is listed once, as the Application
    assert "kustomize/checkout/overlays/prod" not in a
    assert a["payments"]["source_type"] == "plugin"
    assert "plugins/payments/kustomization.yaml.tmpl" in a["payments"]["files"]
    # manifest-generate-paths replaces the file set: the source path and a repo-rooted path
    assert a["billing"]["files"] == [
        "bootstrap/billing.yaml",
        "manifests/billing/deployment.yaml",
        "shared/billing/config.yaml",
    ]
    # ApplicationSets: directories minus the excluded one; a files generator's JSON keys as parameters
    assert "services/legacy/deployment.yaml" not in {f for fs in df["files"] for f in fs}
    assert a["svc-a"]["files"] == ["bootstrap/services.yaml", "services/a/deployment.yaml"]
    assert a["tenant-acme"]["namespace"] == "acme"
    assert a["tenant-acme"]["files"] == [
        "bootstrap/tenants.yaml",
        "tenants/acme/config.json",
        "tenants/acme/manifests/deploy.yaml",
    ]
    # the app-of-apps chart: its templates define the child Applications
    assert a["root"]["source_type"] == "helm" and "apps/templates/api.yaml" in a["root"]["files"]


def test_an_image_commit_reaches_its_seven_apps_and_what_changed_credits_them(
    monorepo: tuple[Path, dict[str, str]],
) -> None:
    path, shas = monorepo
    repo = DeployRepo(path)
    assert sorted(repo.affected_apps(shas["bump"])["app"]) == BUMPED
    changes = repo.app_changes(shas["bump"])
    assert list(changes.columns) == list(schema.APP_CHANGES)
    assert sorted(changes["app"]) == BUMPED and set(changes["change"]) == {"changed"}
    tl = what_changed(repo, at=T0 + pd.Timedelta("1h10m"), window="2h")
    row = tl[tl["sha"] == shas["bump"]].iloc[0]
    assert row["apps"] == BUMPED
    assert "image" in row["why"]


def _cluster_specs() -> list[dict[str, Any]]:
    """The Applications as the cluster holds them: the git ones, rendered."""
    import yaml

    out = []
    for f, text in files("1.0.0").items():
        if not f.startswith(("apps/templates/", "bootstrap/")) or text is None or "ApplicationSet" in text:
            continue
        text = text.replace("{{ .Values.repoURL }}", REPO).replace("{{ .Values.targetRevision }}", "main")
        out.append(yaml.safe_load(text.replace("{{ .Values.destination }}", "https://kubernetes.default.svc")))
    for svc in ("svc-a", "svc-b"):
        path = f"services/{svc[4:]}"
        out.append(
            {
                "metadata": {"name": svc},
                "spec": {"source": {"repoURL": REPO, "path": path}, "destination": {"namespace": svc[4:]}},
            }
        )
    out.append(
        {
            "metadata": {"name": "tenant-acme"},
            "spec": {
                "source": {"repoURL": REPO, "path": "tenants/acme/manifests"},
                "destination": {"namespace": "acme"},
            },
        }
    )
    return out


def test_the_git_alone_answer_equals_the_answer_from_the_application_specs(
    monorepo: tuple[Path, dict[str, str]],
) -> None:
    path, shas = monorepo
    repo = DeployRepo(path)
    specs = _cluster_specs()
    from_git = repo.apps().sort_values("app").reset_index(drop=True)
    from_specs = repo.apps(applications=specs).sort_values("app").reset_index(drop=True)
    pd.testing.assert_frame_equal(from_git, from_specs)
    assert sorted(repo.affected_apps(shas["bump"], applications=specs)["app"]) == BUMPED


def test_application_rows_from_cluster_frames_name_the_same_files(monorepo: tuple[Path, dict[str, str]]) -> None:
    """``Cluster.applications()`` rows (sources with helm settings) give what raw specs give."""
    from gitops_nb.cluster.live import app_row  # the row the live cluster builds from an object

    repo = DeployRepo(monorepo[0])
    rows = pd.DataFrame([app_row(s) for s in _cluster_specs()])
    got = by_app(repo.apps(applications=rows))
    want = by_app(repo.apps())
    for app in ("web-prod", "redis", "batch", "dashboards"):
        assert got[app]["files"] == want[app]["files"], app


def test_application_rows_read_back_from_a_snapshot_name_the_same_files(
    monorepo: tuple[Path, dict[str, str]], tmp_path: Path
) -> None:
    """A snapshot's Parquet gives nested lists back as arrays (Helm ``valueFiles``): restored, the
    rows read as the live ones, so ``what_changed(cluster=Snapshot(...))`` maps through them."""
    from gitops_nb.cluster.live import app_row
    from gitops_nb.cluster.snapshot import _restore
    from gitops_nb.results import load_results, save_results

    repo = DeployRepo(monorepo[0])
    rows = schema.frame(schema.APPLICATIONS, [app_row(s) for s in _cluster_specs()])
    frames, _ = load_results(save_results(tmp_path / "snap", {"applications": rows}, formats=("parquet",)))
    saved = _restore("applications", frames["applications"])
    value_files = [(s["helm"] or {}).get("valueFiles") for r in (rows, saved) for srcs in r["sources"] for s in srcs]
    half = len(value_files) // 2
    assert any(value_files[:half]) and value_files[half:] == value_files[:half]  # lists again, not arrays
    got, want = by_app(repo.apps(applications=saved)), by_app(repo.apps(applications=rows))
    assert got.keys() == want.keys()
    for app in want:
        assert got[app]["files"] == want[app]["files"], app


def test_app_changes_added_removed_and_changed(tmp_path: Path) -> None:
    w = RepoWriter(tmp_path / "r")
    w.commit("initial", when=T0, files=files("1.0.0"))
    sha = w.commit(
        "svc-c, drop worker, retarget batch",
        when=T0 + pd.Timedelta("1h"),
        files={
            "services/c/deployment.yaml": deploy("svc-c", "1"),
            "bootstrap/worker.yaml": None,
            "bootstrap/batch.yaml": files("1.0.0")["bootstrap/batch.yaml"].replace(
                "targetRevision: main", "targetRevision: v2"
            ),  # type: ignore[union-attr]
        },
    )
    got = DeployRepo(tmp_path / "r").app_changes(sha)
    assert {(a, c) for a, c in zip(got["app"], got["change"], strict=True)} == {
        ("svc-c", "added"),
        ("worker", "removed"),
        ("batch", "changed"),
    }
    assert got.set_index("app").loc["batch", "matched"] == ["bootstrap/batch.yaml"]


def test_include_exclude_globs_have_argo_cd_semantics() -> None:
    assert glob_match("*.yaml", "sub/dir/x.yaml")  # gobwas/glob without separators: * crosses /
    assert glob_match("{config.json,*-dev.yaml}", "a/b-dev.yaml")
    assert not glob_match("{config.json,*-dev.yaml}", "a/b.yaml")
    assert glob_match("[!x]*.y?ml", "a.yaml") and not glob_match("[!x]*.yaml", "x.yaml")
    assert not glob_match("services/*", "services/a/b", sep=True)  # path.Match: * stays in a segment
    assert glob_match("envs/**/values.yaml", "envs/values.yaml", sep=True)
    assert glob_match("envs/**/values.yaml", "envs/a/b/values.yaml", sep=True)


def test_bad_input_is_a_row_that_says_so(tmp_path: Path) -> None:
    w = RepoWriter(tmp_path / "r")
    broken = {
        "charts/broken/Chart.yaml": "name: [unclosed\n",
        "charts/broken/templates/x.yaml": TEMPLATE,
        "charts/ok/Chart.yaml": chart("ok"),
        "charts/ok/bad-values.yaml": "image: {tag: [\n",
        "bootstrap/broken.yaml": application("broken", src("charts/broken")),
        "bootstrap/badvalues.yaml": application("badvalues", src("charts/ok", helm="valueFiles:\n- bad-values.yaml")),
        "bootstrap/missing.yaml": application("missing", src("charts/ok", helm="valueFiles:\n- nope.yaml")),
        "bootstrap/ignored.yaml": application(
            "ignored", src("charts/ok", helm="ignoreMissingValueFiles: true\nvalueFiles:\n- nope.yaml")
        ),
        "bootstrap/ksonnet.yaml": application("old", src("ks/app", ksonnet="environment: prod")),
        "bootstrap/two.yaml": application("two", src("charts/ok", helm="releaseName: x", kustomize="namePrefix: x-")),
        "bootstrap/gone.yaml": application("gone", src("not/here")),
        "bootstrap/fine.yaml": application("fine", src("manifests")),
        "manifests/a.yaml": deploy("a", "1"),
    }
    sha = w.commit("bad input", when=T0, files=broken)
    repo = DeployRepo(tmp_path / "r")
    a = by_app(repo.apps())
    assert a["fine"]["error"] is None and a["ignored"]["error"] is None
    assert "broken chart: charts/broken/Chart.yaml is not valid YAML" in a["broken"]["error"]
    assert "charts/broken/templates/x.yaml" in a["broken"]["files"]  # still mapped
    assert "values file charts/ok/bad-values.yaml is not valid YAML" in a["badvalues"]["error"]
    assert "missing value file nope.yaml" in a["missing"]["error"]
    assert a["old"]["error"] == "unknown source type: ksonnet" and a["old"]["source_type"] == "unknown"
    assert a["two"]["error"] == "multiple source types set: helm, kustomize"
    assert "not/here is not in the repo" in a["gone"]["error"]
    changes = repo.app_changes(sha).set_index("app")
    assert changes.loc["missing", "change"] == "added" and "missing value file" in changes.loc["missing", "error"]


def test_templated_applications_are_skipped_with_a_row_that_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without helm, what the substitution cannot read is a row that says why (and that helm is missing)."""
    monkeypatch.setenv("GITOPS_NB_HELM", str(tmp_path / "no-helm"))
    w = RepoWriter(tmp_path / "r")
    ranged = """{{- range .Values.apps }}
---
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {{ .name }}
spec:
  source:
    repoURL: x
    path: {{ .path }}
{{- end }}
"""
    templated = helm_app("tpl", "charts/{{ .Values.chartName }}", [])
    w.commit(
        "app-of-apps",
        when=T0,
        files={
            "apps/Chart.yaml": chart("apps"),
            "apps/values.yaml": f"repoURL: {REPO}\n",
            "apps/templates/ranged.yaml": ranged,
            "apps/templates/tpl.yaml": templated,
            "apps/templates/plain.yaml": helm_app("plain", "charts/x", []),
            "charts/x/Chart.yaml": chart("x"),
        },
    )
    a = by_app(DeployRepo(tmp_path / "r").apps())
    assert a["plain"]["error"] is None
    assert "range" in a["apps/templates/ranged.yaml#1"]["error"]
    assert "helm not found: " in a["apps/templates/ranged.yaml#1"]["error"]
    assert "spec.source.path" in a["apps/templates/tpl.yaml#0"]["error"]
    assert a["apps/templates/tpl.yaml#0"]["files"] == ["apps/templates/tpl.yaml"]


def test_a_helm_template_change_is_one_row_and_chart_fields_read_well(tmp_path: Path) -> None:
    w = RepoWriter(tmp_path / "r")
    app = application("web", src("charts/web", helm="parameters:\n- name: image.tag\n  value: '1'"))
    w.commit(
        "chart",
        when=T0,
        files={
            "charts/web/Chart.yaml": chart(
                "web", "dependencies:\n- name: redis\n  version: 1.0.0\n  repository: https://x\n"
            ),
            "charts/web/templates/deployment.yaml": TEMPLATE,
            "charts/web/templates/_helpers.tpl": '{{- define "x" -}}a{{- end }}\n',
            "app.yaml": app,
        },
    )
    sha = w.commit(
        "bump chart",
        when=T0 + pd.Timedelta("1h"),
        files={
            "charts/web/Chart.yaml": chart(
                "web", "dependencies:\n- name: redis\n  version: 1.1.0\n  repository: https://x\n"
            ).replace("version: 1.0.0\nappVersion: '1.0'", "version: 1.1.0\nappVersion: '1.1'"),
            "charts/web/templates/deployment.yaml": TEMPLATE + "      - name: sidecar\n        image: x\n",
            "charts/web/templates/_helpers.tpl": '{{- define "x" -}}b{{- end }}\n',
            "app.yaml": app.replace("targetRevision: main", "targetRevision: v1.2.0").replace(
                "value: '1'", "value: '2'"
            )
            + "  syncPolicy:\n    automated:\n      selfHeal: true\n",
        },
    )
    rows = DeployRepo(tmp_path / "r").manifest_changes()
    rows = rows[rows["sha"] == sha]
    assert rows["field"].notna().all() and not rows["unreadable"].any()
    got = {(p, f, o, n) for p, f, o, n in zip(rows["path"], rows["field"], rows["old"], rows["new"], strict=True)}
    assert ("charts/web/Chart.yaml", "version", "1.0.0", "1.1.0") in got
    assert ("charts/web/Chart.yaml", "appVersion", "1.0", "1.1") in got
    assert ("charts/web/Chart.yaml", "dependencies[redis].version", "1.0.0", "1.1.0") in got
    assert ("app.yaml", "spec.source.targetRevision", "main", "v1.2.0") in got
    assert ("app.yaml", "spec.source.helm.parameters[image.tag].value", "1", "2") in got
    assert ("app.yaml", "spec.syncPolicy.automated.selfHeal", None, "true") in got
    tpl = rows[rows["via"] == "helm-template"]
    assert sorted(tpl["path"]) == ["charts/web/templates/_helpers.tpl", "charts/web/templates/deployment.yaml"]
    assert set(tpl["change"]) == {"modified"} and set(tpl["field"]) == {"(template)"}
    assert list(tpl[tpl["path"].str.endswith("deployment.yaml")]["new"]) == ["13 lines"]


def test_a_values_image_tag_bump_weighs_like_a_kustomize_new_tag_bump(monorepo: tuple[Path, dict[str, str]]) -> None:
    path = monorepo[0]
    w = RepoWriter(path.parent / "weights")
    w.commit("initial", when=T0, files=files("1.0.0"))
    when = T0 + pd.Timedelta("1h")
    helm = w.commit("api 1.1", when=when, files={"charts/api/values.yaml": values("1.1.0")})
    kust = w.commit(
        "checkout 1.1",
        when=when,
        files={
            "kustomize/checkout/overlays/prod/kustomization.yaml": files("1.1.0")[
                "kustomize/checkout/overlays/prod/kustomization.yaml"
            ]
        },
    )
    tl = what_changed(path.parent / "weights", at=when + pd.Timedelta("10m"), window="1h").set_index("sha")
    assert tl.loc[helm, "apps"] == ["api"] and tl.loc[kust, "apps"] == ["checkout"]
    assert tl.loc[helm, "score"] == pytest.approx(tl.loc[kust, "score"])


def test_a_plugin_over_a_kustomization_dir_is_the_plugin_app(tmp_path: Path) -> None:
    """Found on argoproj/argocd-example-apps: plugins/kustomized-helm holds a kustomization.yaml that only
    the plugin reads, and its overlays are files no kustomization lists; the image commit of 7 apps
    touched plugins/kustomized-helm/overlays/guestbook-deployment.yaml."""
    w = RepoWriter(tmp_path / "r")
    w.commit(
        "plugin",
        when=T0,
        files={
            "plugins/kh/kustomization.yaml": "resources:\n- all.yaml\n",
            "plugins/kh/overlays/guestbook-deployment.yaml": deploy("guestbook", "1"),
            "bootstrap/kh.yaml": application("kh", src("plugins/kh", plugin="name: kustomized-helm")),
        },
    )
    sha = w.commit(
        "image",
        when=T0 + pd.Timedelta("1h"),
        files={"plugins/kh/overlays/guestbook-deployment.yaml": deploy("guestbook", "2")},
    )
    repo = DeployRepo(tmp_path / "r")
    assert list(repo.apps()["app"]) == ["kh"]
    assert list(repo.affected_apps(sha)["app"]) == ["kh"]


# -- an app-of-apps chart Argo CD renders with helm (shaped like argoproj/argocd-example-apps' apps/) ----------

APP_OF_APPS = """{{- range .Values.applications }}
{{- $config := $.Values.config -}}
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {{ printf "acme.%s" .name | quote }}
  namespace: argocd
  finalizers:
  - resources-finalizer.argocd.argoproj.io
spec:
  destination:
    namespace: {{ .namespace | default .name | quote }}
    server: {{ $config.spec.destination.server | quote }}
  project: default
  source:
    path: {{ .path | default .name | quote }}
    repoURL: {{ $config.spec.source.repoURL }}
    targetRevision: {{ $config.spec.source.targetRevision }}
    {{- with .tool }}
    {{- . | toYaml | nindent 4 }}
    {{- end }}
  syncPolicy:
    syncOptions:
      - CreateNamespace=true
---
{{ end -}}
"""

CHILDREN = """
  - name: web
    tool:
      helm:
        releaseName: web
  - name: worker
    path: manifests/worker
  - name: checkout
    path: kustomize/checkout/overlays/prod
    namespace: shop
  - name: payments
    path: plugins/payments
    tool:
      plugin:
        name: sops
"""


def app_of_apps_values(children: str = CHILDREN) -> str:
    return f"""config:
  spec:
    destination:
      server: https://kubernetes.default.svc
    source:
      repoURL: {REPO}
      targetRevision: main

applications:{children}"""


def app_of_apps_files() -> dict[str, str | None]:
    return {
        "apps/Chart.yaml": chart("applications"),  # the chart's name is not its directory's
        "apps/values.yaml": app_of_apps_values(),
        "apps/templates/applications.yaml": APP_OF_APPS,
        "web/Chart.yaml": chart("web"),
        "web/values.yaml": values("1.0.0"),
        "web/templates/deployment.yaml": TEMPLATE,
        "web/templates/_helpers.tpl": '{{- define "web.fullname" -}}{{ .Release.Name }}{{- end }}\n',
        "manifests/worker/deployment.yaml": deploy("worker", "1"),
        "kustomize/checkout/base/kustomization.yaml": "resources:\n- deployment.yaml\n",
        "kustomize/checkout/base/deployment.yaml": deploy("checkout", "1"),
        "kustomize/checkout/overlays/prod/kustomization.yaml": "resources:\n- ../../base\n",
        "plugins/payments/secrets.enc.yaml": "data: x\n",
    }


#: the child Applications the chart makes, as Argo CD would hold them (what Cluster.applications() reads)
def child_specs() -> list[dict[str, Any]]:
    def spec(name: str, path: str, ns: str | None = None, **tool: Any) -> dict[str, Any]:
        source = {"repoURL": REPO, "targetRevision": "main", "path": path, **tool}
        return {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": "Application",
            "metadata": {"name": f"acme.{name}", "namespace": "argocd"},
            "spec": {"destination": {"namespace": ns or name}, "source": source},
        }

    return [
        spec("web", "web", helm={"releaseName": "web"}),
        spec("worker", "manifests/worker"),
        spec("checkout", "kustomize/checkout/overlays/prod", "shop"),
        spec("payments", "plugins/payments", plugin={"name": "sops"}),
    ]


@pytest.fixture
def helm(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The real helm (the sandbox's build): a missing helm fails these tests, it does not skip them."""
    from gitops_nb.git.tools import find_tool

    monkeypatch.delenv("GITOPS_NB_HELM", raising=False)
    found = find_tool("helm")
    assert found is not None, "no helm: run `gitops-nb sandbox build` (or set $GITOPS_NB_HELM)"
    monkeypatch.setenv("GITOPS_NB_HELM", str(found))
    return found


@pytest.fixture
def app_of_apps(tmp_path: Path, helm: Path) -> RepoWriter:
    w = RepoWriter(tmp_path / "r")
    w.commit("app of apps", when=T0, author=ALICE, files=app_of_apps_files())
    return w


def test_an_app_of_apps_chart_with_a_range_is_rendered_with_helm(app_of_apps: RepoWriter) -> None:
    repo = DeployRepo(app_of_apps.path)
    df = repo.apps()
    assert df["error"].isna().all(), df[df["error"].notna()][["app", "error"]]
    a = by_app(df)
    assert sorted(n for n in a if n.startswith("acme.")) == [
        "acme.checkout",
        "acme.payments",
        "acme.web",
        "acme.worker",
    ]
    definition = ["apps/templates/applications.yaml", "apps/values.yaml"]
    assert a["acme.web"]["source_type"] == "helm"
    assert a["acme.web"]["files"] == sorted(
        [
            *definition,
            "web/Chart.yaml",
            "web/values.yaml",
            "web/templates/deployment.yaml",
            "web/templates/_helpers.tpl",
        ]
    )
    assert a["acme.worker"]["files"] == sorted([*definition, "manifests/worker/deployment.yaml"])
    assert a["acme.checkout"]["source_type"] == "kustomize" and a["acme.checkout"]["namespace"] == "shop"
    assert "kustomize/checkout/base/deployment.yaml" in a["acme.checkout"]["files"]
    assert a["acme.payments"]["source_type"] == "plugin"
    assert a["acme.payments"]["files"] == sorted([*definition, "plugins/payments/secrets.enc.yaml"])
    # the same Applications given as specs (from the cluster) map to the same files
    from_git = df.sort_values("app").reset_index(drop=True)
    from_specs = repo.apps(applications=child_specs()).sort_values("app").reset_index(drop=True)
    pd.testing.assert_frame_equal(from_git, from_specs)


def test_app_of_apps_children_in_affected_apps_and_app_changes(app_of_apps: RepoWriter) -> None:
    from gitops_nb.git import repo as repo_module
    from gitops_nb.git import tools

    repo_module._chart_renders.clear()  # renders are by content: another test's may serve this one's
    runs = tools.tool_runs["helm"]
    w = app_of_apps
    one = w.commit(
        "worker 2", when=T0 + pd.Timedelta("1h"), files={"manifests/worker/deployment.yaml": deploy("worker", "2")}
    )
    children = CHILDREN + "  - name: billing\n    path: manifests/billing\n"
    two = w.commit(
        "billing",
        when=T0 + pd.Timedelta("2h"),
        files={"apps/values.yaml": app_of_apps_values(children), "manifests/billing/deployment.yaml": deploy("b", "1")},
    )
    repo = DeployRepo(w.path)
    assert list(repo.affected_apps(one)["app"]) == ["acme.worker"]
    changes = repo.app_changes(two)
    got = {(a, c) for a, c in zip(changes["app"], changes["change"], strict=True)}
    assert ("acme.billing", "added") in got
    assert {c for a, c in got if a != "acme.billing"} == {"changed"}  # the values file builds every child
    # one render per chart content: the initial tree and the worker commit share it, the values change re-renders
    assert tools.tool_runs["helm"] - runs == 2
    repo2 = DeployRepo(w.path)
    repo2.apps(one)
    repo2.apps(two)
    assert tools.tool_runs["helm"] - runs == 2  # another DeployRepo of the same repo: from memory


def test_an_app_of_apps_rendered_with_the_values_its_application_names(tmp_path: Path, helm: Path) -> None:
    """A root Application with its own value files has the chart rendered with them (as Argo CD does)."""
    w = RepoWriter(tmp_path / "r")
    files = app_of_apps_files()
    files["apps/values-prod.yaml"] = "applications:\n  - name: worker\n    path: manifests/worker\n"
    files["bootstrap/root.yaml"] = application("root", src("apps", helm="valueFiles:\n- values-prod.yaml"))
    w.commit("root", when=T0, files=files)
    a = by_app(DeployRepo(w.path).apps())
    assert sorted(n for n in a if n.startswith("acme.")) == ["acme.worker"]
    assert "apps/values-prod.yaml" in a["acme.worker"]["files"]
    assert a["root"]["error"] is None and "apps/templates/applications.yaml" in a["root"]["files"]


def test_a_chart_helm_cannot_render_is_an_error_row(tmp_path: Path, helm: Path) -> None:
    w = RepoWriter(tmp_path / "r")
    files = app_of_apps_files()
    files["apps/templates/applications.yaml"] = APP_OF_APPS.replace(
        "namespace: argocd", 'namespace: {{ required "argocdNamespace is required" $.Values.argocdNamespace }}'
    )
    w.commit("broken", when=T0, files=files)
    a = by_app(DeployRepo(w.path).apps())
    row = a["apps/templates/applications.yaml#0"]
    assert "helm template failed" in row["error"] and "argocdNamespace is required" in row["error"]
