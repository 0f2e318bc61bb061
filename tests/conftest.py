"""Shared fixtures: real git repositories built by helpers, never mocks of git."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from gitops_nb.sandbox.demo import ALICE, BOB, CI, DemoRepo, RepoWriter, make_demo_repo

T0 = pd.Timestamp("2026-03-18T08:00:00Z")


@pytest.fixture(scope="session", autouse=True)
def _scrub_env(tmp_path_factory: pytest.TempPathFactory) -> None:
    """No user or system git config, no kubeconfig of the developer's, leak into tests."""
    home = tmp_path_factory.mktemp("home")
    # the sandbox's build cache and the developer's running sandbox stay where they are
    os.environ.setdefault("GITOPS_NB_CACHE", str(Path.home() / ".cache" / "gitops-nb"))
    os.environ.setdefault("GITOPS_NB_STATE", str(Path(os.environ["GITOPS_NB_CACHE"]) / "run"))
    os.environ["HOME"] = str(home)
    os.environ["GIT_CONFIG_NOSYSTEM"] = "1"
    os.environ.pop("KUBECONFIG", None)
    os.environ.pop("XDG_CONFIG_HOME", None)


def git(path: Path, *args: str) -> str:
    """Run the git binary (for checks made independently of the library)."""
    return subprocess.run(["git", *args], cwd=path, check=True, capture_output=True, text=True).stdout


BASE_KUST = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
- deployment.yaml
- service.yaml
- config.yaml
"""


def deployment(image: str = "ghcr.io/acme/checkout-api:latest", memory: str = "512Mi", replicas: int = 2) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout-api
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: checkout-api}}
  template:
    metadata:
      labels: {{app: checkout-api}}
    spec:
      containers:
      - name: checkout-api
        image: {image}
        resources:
          limits: {{memory: {memory}}}
      - name: sidecar
        image: envoyproxy/envoy:v1.30.0
"""


SERVICE = """apiVersion: v1
kind: Service
metadata:
  name: checkout-api
spec:
  ports:
  - port: 80
"""


def config(level: str = "info", flag: str = "off") -> str:
    return f"""apiVersion: v1
kind: ConfigMap
metadata:
  name: checkout-config
data:
  LOG_LEVEL: {level}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: checkout-flags
data:
  NEW_CART: "{flag}"
"""


def overlay(env: str, tag: str, replicas: int, memory: str | None = None, smp: bool = False) -> str:
    text = f"""apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: checkout-{env}
resources:
- ../../base
replicas:
- name: checkout-api
  count: {replicas}
images:
- name: ghcr.io/acme/checkout-api
  newTag: "{tag}"
"""
    if memory or smp:
        text += "patches:\n"
    if memory:
        text += f"""- target:
    kind: Deployment
    name: checkout-api
  patch: |-
    - op: replace
      path: /spec/template/spec/containers/0/resources/limits/memory
      value: {memory}
"""
    if smp:
        text += "- path: cpu-patch.yaml\n"
    return text


def cpu_patch(cpu: str) -> str:
    return f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: checkout-api
spec:
  template:
    spec:
      containers:
      - name: checkout-api
        resources:
          requests: {{cpu: {cpu}}}
"""


def secret(password: str) -> str:
    return f"""apiVersion: v1
kind: Secret
metadata:
  name: db-credentials
stringData:
  password: {password}
"""


PLANTED_SECRET_OLD = "s3cr3t-old-PLANTED-value"
PLANTED_SECRET_NEW = "s3cr3t-new-PLANTED-value"


@dataclass
class FixtureRepo:
    path: Path
    shas: dict[str, str]


def build_fixture_repo(path: Path) -> FixtureRepo:
    """A deploy-config repo with every kind of change the history features read."""
    w = RepoWriter(path)
    shas: dict[str, str] = {}
    b, st, pr = "apps/checkout-api/base", "apps/checkout-api/overlays/staging", "apps/checkout-api/overlays/production"

    def at(hours: float) -> pd.Timestamp:
        return T0 + pd.Timedelta(hours=hours)

    shas["initial"] = w.commit(
        "Initial layout",
        when=at(0),
        author=ALICE,
        files={
            f"{b}/kustomization.yaml": BASE_KUST,
            f"{b}/deployment.yaml": deployment(),
            f"{b}/service.yaml": SERVICE,
            f"{b}/config.yaml": config(),
            f"{st}/kustomization.yaml": overlay("staging", "1.0.0", 1),
            f"{pr}/kustomization.yaml": overlay("production", "1.0.0", 4, memory="1Gi", smp=True),
            f"{pr}/cpu-patch.yaml": cpu_patch("250m"),
            "platform/secret.yaml": secret(PLANTED_SECRET_OLD),
            "docs/logo.png": "\x89PNG\r\n\x1a\n\x00\x00binary",
            "README.md": "# deploy-config\n",
        },
    )
    shas["bump-staging"] = w.commit(
        "deploy(checkout-api/staging): 1.1.0",
        when=at(1),
        author=CI,
        files={f"{st}/kustomization.yaml": overlay("staging", "1.1.0", 1)},
    )
    shas["bump-prod"] = w.commit(
        "deploy(checkout-api/production): 1.1.0",
        when=at(2),
        author=CI,
        files={f"{pr}/kustomization.yaml": overlay("production", "1.1.0", 4, memory="1Gi", smp=True)},
    )
    shas["replicas"] = w.commit(
        "production: 6 replicas for the sale",
        when=at(3),
        author=BOB,
        files={f"{pr}/kustomization.yaml": overlay("production", "1.1.0", 6, memory="1Gi", smp=True)},
    )
    shas["base"] = w.commit(
        "base: memory 640Mi", when=at(4), author=ALICE, files={f"{b}/deployment.yaml": deployment(memory="640Mi")}
    )
    shas["bad"] = w.commit(
        "deploy(checkout-api/production): 1.2.0",
        when=at(5),
        author=CI,
        files={f"{pr}/kustomization.yaml": overlay("production", "1.2.0", 6, memory="1Gi", smp=True)},
    )
    w.write({f"{pr}/kustomization.yaml": overlay("production", "1.1.0", 6, memory="1Gi", smp=True)})
    shas["revert-short"] = w.commit(
        f'Revert "deploy(checkout-api/production): 1.2.0"\n\nThis reverts commit {shas["bad"][:8]}.',
        when=at(5.5),
        author=BOB,
    )
    # a feature branch, merged with --no-ff
    w.git("checkout", "-q", "-b", "feature/memory")
    shas["feature"] = w.commit(
        "production: memory 2Gi",
        when=at(6),
        author=BOB,
        files={f"{pr}/kustomization.yaml": overlay("production", "1.1.0", 6, memory="2Gi", smp=True)},
    )
    w.git("checkout", "-q", "main")
    date = at(7).strftime("%Y-%m-%dT%H:%M:%S%z")
    w.git(
        "merge",
        "-q",
        "--no-ff",
        "-m",
        "Merge branch 'feature/memory'",
        "feature/memory",
        env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date},
    )
    shas["merge"] = w.git("rev-parse", "HEAD").strip()
    shas["misc"] = w.commit(
        "cpu patch, flags, secret rotation, logo",
        when=at(8),
        author=ALICE,
        files={
            f"{pr}/cpu-patch.yaml": cpu_patch("500m"),
            f"{b}/config.yaml": config(flag="on"),
            "platform/secret.yaml": secret(PLANTED_SECRET_NEW),
            "docs/logo.png": "\x89PNG\r\n\x1a\n\x00\x00binary-v2",
            "notes.txt": "plain text, not YAML\n",
        },
    )
    (path / "README.md").rename(path / "docs" / "README.md")
    shas["rename"] = w.commit("move README under docs/", when=at(9), author=ALICE)
    date = at(10).strftime("%Y-%m-%dT%H:%M:%S%z")
    w.git("revert", "--no-edit", shas["bump-staging"], env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date})
    shas["revert-full"] = w.git("rev-parse", "HEAD").strip()
    return FixtureRepo(path=path, shas=shas)


@pytest.fixture(scope="session")
def fixture_repo(tmp_path_factory: pytest.TempPathFactory) -> FixtureRepo:
    """The shared fixture repo. Tests must not change it; copy it first (see ``repo_copy``)."""
    return build_fixture_repo(tmp_path_factory.mktemp("repo") / "deploy-config")


@pytest.fixture
def repo_copy(fixture_repo: FixtureRepo, tmp_path: Path) -> FixtureRepo:
    """A private copy of the fixture repo, for tests that damage or change it."""
    dst = tmp_path / "deploy-config"
    shutil.copytree(fixture_repo.path, dst)
    return FixtureRepo(path=dst, shas=dict(fixture_repo.shas))


@pytest.fixture(scope="session")
def demo_repo(tmp_path_factory: pytest.TempPathFactory) -> DemoRepo:
    """The demo deploy-config repo, ending at a fixed time."""
    return make_demo_repo(tmp_path_factory.mktemp("demo") / "deploy-config", end=pd.Timestamp("2026-03-18T15:00:00Z"))


def tree_state(path: Path) -> dict[str, float]:
    """Every file under ``path`` with its mtime: to prove a call wrote nothing."""
    return {str(p.relative_to(path)): p.stat().st_mtime for p in sorted(path.rglob("*")) if p.is_file()}


# -- the sandbox: one per test session ------------------------------------------------


@pytest.fixture(scope="session")
def sandbox(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A running sandbox: the developer's own if it is up, else a fresh one for this session.

    A sandbox that cannot be started fails the test (never skips): cluster-side tests need it.
    """
    from gitops_nb.sandbox.control import COMPONENTS, Sandbox

    own = Sandbox()
    if own.kubeconfig.exists() and any(own._pid(c) is not None for c in COMPONENTS):
        own.up(timeout=240)  # the developer's sandbox, (partly) running: reuse it, restarting what is down
        yield own
        return
    sb = Sandbox(tmp_path_factory.mktemp("sandbox-state"))
    try:
        sb.up(timeout=240)
        yield sb
    finally:
        sb.down()


def remove_app(api, name: str, namespace: str | None = None) -> None:  # type: ignore[no-untyped-def]
    """Delete a test's Application and its destination namespace, so a reused sandbox does not pile up pods."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    for delete in (
        lambda: client.CustomObjectsApi(api).delete_namespaced_custom_object(
            "argoproj.io", "v1alpha1", "argocd", "applications", name
        ),
        lambda: client.CoreV1Api(api).delete_namespace(namespace) if namespace else None,
    ):
        try:
            delete()
        except ApiException as e:
            if e.status != 404:
                raise


def unique(prefix: str) -> str:
    """A name no earlier test run used (objects in a reused sandbox persist)."""
    import secrets

    return f"{prefix}-{secrets.token_hex(3)}"


def app_files(name: str, tag: str, *, env: str = "prod", replicas: int = 2) -> dict[str, str]:
    """A Kustomize app ``apps/<name>/{base,overlays/<env>}`` deploying image ``ghcr.io/acme/<name>:<tag>``."""
    return {
        f"apps/{name}/base/kustomization.yaml": "resources:\n- deployment.yaml\n",
        f"apps/{name}/base/deployment.yaml": (
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {name}\nspec:\n  replicas: 1\n"
            f"  selector:\n    matchLabels: {{app: {name}}}\n  template:\n    metadata:\n      labels: {{app: {name}}}\n"
            f"    spec:\n      containers:\n      - name: {name}\n        image: ghcr.io/acme/{name}:latest\n"
        ),
        f"apps/{name}/overlays/{env}/kustomization.yaml": overlay_text(name, tag, replicas),
    }


def overlay_text(name: str, tag: str, replicas: int = 2) -> str:
    """The overlay of :func:`app_files`: a replica count and one image tag (what CI bumps)."""
    return (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- ../../base\n"
        f'replicas:\n- name: {name}\n  count: {replicas}\nimages:\n- name: ghcr.io/acme/{name}\n  newTag: "{tag}"\n'
    )
