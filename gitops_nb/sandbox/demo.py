"""A demo deploy-config repository with a short, realistic history.

Layout (as in a typical Argo CD setup)::

    apps/<service>/base/{kustomization.yaml,deployment.yaml,service.yaml}
    apps/<service>/overlays/<env>/kustomization.yaml

History: CI tag bumps (one ``newTag`` line each), a human replica change, a change
to a base that reaches two overlays, a revert, and - 25 minutes before the demo
incident time - a bad production tag bump of ``checkout-api``.

Deployed in the sandbox (:func:`deploy_demo`), the repository is set up the way teams work:
a bare ``deploy-config.git`` that Argo CD reads (the "origin"), and a working clone
``deploy-config`` that commits are made in and pushed from. The rollback rehearsal
(``gitops-nb demo`` prints the command) reverts in the clone and pushes to the origin;
:func:`reset_demo_incident` puts the incident back for the next rehearsal.
"""

from __future__ import annotations

import copy
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import InputError

if TYPE_CHECKING:
    from .control import Sandbox

__all__ = [
    "DemoDeployment",
    "DemoRepo",
    "RepoWriter",
    "bump_tag",
    "deploy_demo",
    "make_demo_repo",
    "remake_demo_repo",
    "reset_demo_incident",
]

CI = ("deploy-bot", "deploy-bot@example.com")
ALICE = ("Alice Ops", "alice@example.com")
BOB = ("Bob Dev", "bob@example.com")
ONCALL = ("On-call engineer", "oncall@example.com")  # who commits in the demo's clone (the rehearsal's revert)
REGISTRY = "ghcr.io/acme"


class RepoWriter:
    """Writes files and commits them with chosen authors and dates (for demos and tests)."""

    def __init__(self, path: str | Path, *, branch: str = "main", identity: tuple[str, str] = CI) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        if not (self.path / ".git").exists():
            self.git("init", "-q", "-b", branch)
        self.git("config", "user.name", identity[0])  # for commits made without explicit authors (a revert)
        self.git("config", "user.email", identity[1])
        self.git("config", "commit.gpgsign", "false")

    def git(self, *args: str, env: dict[str, str] | None = None) -> str:
        """Run git in the repository and return its stdout."""
        full_env = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", **(env or {})}
        res = subprocess.run(["git", *args], cwd=self.path, env=full_env, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"git {' '.join(args)} failed: {res.stderr.strip()}")
        return res.stdout

    def write(self, files: dict[str, str | None]) -> None:
        """Write (or, for ``None``, delete) files relative to the work tree."""
        for rel, text in files.items():
            p = self.path / rel
            if text is None:
                p.unlink(missing_ok=True)
            else:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.write_text(text)

    def commit(
        self,
        message: str,
        *,
        when: pd.Timestamp | str,
        author: tuple[str, str] = CI,
        files: dict[str, str | None] | None = None,
        allow_empty: bool = False,
    ) -> str:
        """Stage everything (after writing ``files``) and commit; returns the new sha."""
        if files:
            self.write(files)
        self.git("add", "-A")
        stamp = pd.Timestamp(when)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
        date = stamp.strftime("%Y-%m-%dT%H:%M:%S%z")
        env = {
            "GIT_AUTHOR_NAME": author[0],
            "GIT_AUTHOR_EMAIL": author[1],
            "GIT_AUTHOR_DATE": date,
            "GIT_COMMITTER_NAME": author[0],
            "GIT_COMMITTER_EMAIL": author[1],
            "GIT_COMMITTER_DATE": date,
        }
        self.git("commit", "-q", *(["--allow-empty"] if allow_empty else []), "-m", message, env=env)
        return self.git("rev-parse", "HEAD").strip()

    def push(self, remote: str = "origin", branch: str | None = None) -> None:
        """Push HEAD to ``remote``'s ``branch`` (default: the checked-out branch's name); never forced."""
        branch = branch or self.git("symbolic-ref", "--short", "HEAD").strip()
        self.git("push", "-q", remote, f"HEAD:refs/heads/{branch}")


# -- the demo's manifests ------------------------------------------------------


def _base(service: str, port: int, memory: str) -> dict[str, str]:
    return {
        f"apps/{service}/base/kustomization.yaml": (
            "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "resources:\n- deployment.yaml\n- service.yaml\n"
            f"labels:\n- pairs:\n    app.kubernetes.io/name: {service}\n  includeSelectors: true\n"
        ),
        f"apps/{service}/base/deployment.yaml": f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {service}
spec:
  replicas: 2
  selector:
    matchLabels:
      app: {service}
  template:
    metadata:
      labels:
        app: {service}
    spec:
      containers:
      - name: {service}
        image: {REGISTRY}/{service}:latest
        ports:
        - containerPort: {port}
        resources:
          requests:
            cpu: 100m
            memory: 128Mi
          limits:
            memory: {memory}
""",
        f"apps/{service}/base/service.yaml": f"""apiVersion: v1
kind: Service
metadata:
  name: {service}
spec:
  selector:
    app: {service}
  ports:
  - port: 80
    targetPort: {port}
""",
    }


def _overlay(service: str, env: str, tag: str, replicas: int, memory: str | None) -> str:
    text = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"namespace: {service.split('-')[0]}-{env}\nresources:\n- ../../base\n"
        f"replicas:\n- name: {service}\n  count: {replicas}\n"
        f'images:\n- name: {REGISTRY}/{service}\n  newTag: "{tag}"\n'
    )
    if memory:
        text += (
            "patches:\n- target:\n    kind: Deployment\n"
            f"    name: {service}\n  patch: |-\n"
            "    - op: replace\n      path: /spec/template/spec/containers/0/resources/limits/memory\n"
            f"      value: {memory}\n"
        )
    return text


@dataclass
class _State:
    bases: dict[str, tuple[int, str]] = field(default_factory=dict)  # service -> (port, memory)
    overlays: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)

    def files(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {
            "README.md": "# deploy-config\n\nKustomize bases and overlays, one Argo CD Application per overlay.\n"
        }
        for svc, (port, mem) in self.bases.items():
            out.update(_base(svc, port, mem))
        for (svc, env), o in self.overlays.items():
            out[f"apps/{svc}/overlays/{env}/kustomization.yaml"] = _overlay(
                svc, env, o["tag"], o["replicas"], o.get("memory")
            )
        return out


@dataclass
class DemoRepo:
    """What :func:`make_demo_repo` built: the path, the incident time and key commits."""

    path: Path
    incident_at: pd.Timestamp
    commits: dict[str, str]  # label -> sha
    apps: list[str]
    origin: Path | None = None  # the bare repository ``path`` pushes to (and Argo CD reads), if any


def make_demo_repo(path: str | Path, *, end: pd.Timestamp | str | None = None) -> DemoRepo:
    """Create the demo deploy-config repo at ``path`` (which must not hold a repo yet).

    ``end`` is the time of the last commit (default: now). The bad deploy is committed
    at ``end - 25m`` and the demo incident time is ``end - 15m``.
    """
    p = Path(path)
    if (p / ".git").exists():
        raise InputError(f"{p} already holds a git repository: pick an empty directory for the demo")
    t_end = pd.Timestamp(end) if end is not None else pd.Timestamp.now(tz="UTC").floor("s")
    t_end = t_end.tz_localize("UTC") if t_end.tzinfo is None else t_end.tz_convert("UTC")
    w = RepoWriter(p)
    s = _State()
    s.bases = {"checkout-api": (8080, "512Mi"), "payments-worker": (9090, "256Mi"), "web-frontend": (3000, "256Mi")}
    s.overlays = {
        ("checkout-api", "staging"): {"tag": "2026.3.17-4f2c9e1", "replicas": 2, "memory": None},
        ("checkout-api", "production"): {"tag": "2026.3.17-4f2c9e1", "replicas": 4, "memory": "1Gi"},
        ("payments-worker", "production"): {"tag": "1.8.2", "replicas": 2, "memory": None},
        ("web-frontend", "staging"): {"tag": "5.2.0", "replicas": 1, "memory": None},
        ("web-frontend", "production"): {"tag": "5.2.0", "replicas": 3, "memory": None},
    }
    shas: dict[str, str] = {}

    def step(label: str, minutes_before_end: float, message: str, author: tuple[str, str] = CI) -> None:
        shas[label] = w.commit(
            message, when=t_end - pd.Timedelta(minutes=minutes_before_end), author=author, files=s.files()
        )

    def tag(svc: str, env: str, new: str) -> str:
        s.overlays[(svc, env)]["tag"] = new
        return f"deploy({svc}/{env}): {new}"

    step("initial", 360, "Initial deploy-config: checkout-api, payments-worker, web-frontend", ALICE)
    step("web-staging", 300, tag("web-frontend", "staging", "5.3.0"))
    step("checkout-staging", 240, tag("checkout-api", "staging", "2026.3.18-a1b9f04"))
    s.overlays[("checkout-api", "production")]["replicas"] = 6
    step("replicas", 200, "checkout-api production: 6 replicas for the spring sale", ALICE)
    s.bases["checkout-api"] = (8080, "640Mi")
    step("base-memory", 150, "checkout-api base: raise memory limit to 640Mi", BOB)
    step("web-prod", 120, tag("web-frontend", "production", "5.3.0"))
    s.overlays[("payments-worker", "production")]["tag"] = "1.9.0"
    step("payments-bad", 95, "deploy(payments-worker/production): 1.9.0")
    before_revert = copy.deepcopy(s.overlays)
    before_revert[("payments-worker", "production")]["tag"] = "1.8.2"
    s.overlays = before_revert
    w.write(s.files())
    w.git("add", "-A")
    shas["payments-revert"] = w.commit(
        f'Revert "deploy(payments-worker/production): 1.9.0"\n\nThis reverts commit {shas["payments-bad"][:8]}.\n',
        when=t_end - pd.Timedelta(minutes=80),
        author=BOB,
    )
    step("checkout-prod-bad", 25, tag("checkout-api", "production", "2026.3.18-a1b9f04"))
    s_files = s.files()
    s_files["README.md"] = (s_files["README.md"] or "") + "\nOn call: see runbooks/rollback-by-revert.md\n"
    shas["docs"] = w.commit("README: link the on-call runbook", when=t_end, author=ALICE, files=s_files)
    apps = sorted(f"apps/{svc}/overlays/{env}" for svc, env in s.overlays)
    return DemoRepo(path=p, incident_at=t_end - pd.Timedelta(minutes=15), commits=shas, apps=apps)


_MARKER = "gitops-nb-demo"


def remake_demo_repo(repo_dir: Path, *, end: pd.Timestamp | str | None = None, origin: Path | None = None) -> DemoRepo:
    """Build the demo repo at ``repo_dir``, replacing an earlier demo repo there (never another repo).

    With ``origin``, the history is also published as a bare repository there (replacing an
    earlier demo origin, never another repository), and ``repo_dir`` becomes its working clone:
    ``origin`` remote, ``main`` tracking ``origin/main``, commits by an on-call identity.
    """
    import shutil

    mine = {repo_dir: repo_dir / ".git" / _MARKER}
    if origin is not None:
        mine[origin] = origin / _MARKER
    for d, marker in mine.items():  # check both before deleting either
        if d.exists() and not marker.exists():
            raise InputError(f"{d} exists and is not a gitops-nb demo repo: pick another --workdir")
    for d in mine:
        if d.exists():
            shutil.rmtree(d)
    demo = make_demo_repo(repo_dir, end=end)
    (repo_dir / ".git" / _MARKER).write_text("created by gitops-nb demo\n")
    if origin is not None:
        w = RepoWriter(repo_dir, identity=ONCALL)
        w.git("clone", "-q", "--bare", str(repo_dir.resolve()), str(origin.resolve()))
        (origin / _MARKER).write_text("created by gitops-nb demo\n")
        w.git("remote", "add", "origin", str(origin.resolve()))
        w.git("fetch", "-q", "origin")
        w.git("branch", "-q", "--set-upstream-to=origin/main", "main")
        demo.origin = origin
    return demo


def bump_tag(writer: RepoWriter, service: str, env: str, tag: str, *, when: pd.Timestamp | str | None = None) -> str:
    """Commit a CI-style one-line ``newTag`` bump of ``service`` in overlay ``env``; returns the sha."""
    import re

    rel = f"apps/{service}/overlays/{env}/kustomization.yaml"
    text = (writer.path / rel).read_text()
    new = re.sub(r'newTag: ".*"', f'newTag: "{tag}"', text, count=1)
    if new == text:
        raise InputError(f"{rel} has no newTag line to bump (or it already is {tag})")
    return writer.commit(f"deploy({service}/{env}): {tag}", when=when or pd.Timestamp.now(tz="UTC"), files={rel: new})


#: the live incident's bad deploy: CI bumps this service/overlay to this tag
BAD_DEPLOY = ("checkout-api", "production", "2026.3.20-9e8d7c6")


@dataclass
class DemoDeployment:
    """The demo repo deployed by Argo CD in the sandbox, with a live incident story.

    ``repo.path`` is the engineer's working clone; ``repo.origin`` the bare repository
    Argo CD reads (every demo commit was pushed there from the clone).
    """

    repo: DemoRepo
    apps: dict[str, str]  # Application name -> Kustomize root
    deploys: list[tuple[str, str]]  # (Application name, sha) deployed after the initial sync
    bad_sha: str  # the bad production deploy
    edit: dict[str, Any]  # the manual edit: namespace, deployment, manager, fields
    incident_at: pd.Timestamp

    @property
    def bad_app(self) -> str:
        """The Application that deployed :attr:`bad_sha`."""
        return self.deploys[-1][0]


def app_name(root: str) -> str:
    """Application name of a demo overlay: ``apps/checkout-api/overlays/production`` -> ``checkout-api-production``."""
    parts = root.split("/")
    return f"{parts[1]}-{parts[3]}"


def _deploy_all(api: Any, apps: list[str], sha: str, timeout: float) -> None:
    """Every demo app tracks main: refresh them all (now, not at the next poll) and wait until all run ``sha``."""
    from ..cluster.argocd import refresh_app, wait_app

    for n in apps:
        refresh_app(api, n)
    for n in apps:
        wait_app(api, n, revision=sha, timeout=timeout)


def deploy_demo(
    sandbox: Sandbox, workdir: str | Path, *, timeout: float = 180, progress: Callable[[str], None] | None = None
) -> DemoDeployment:
    """Build the demo repo under ``workdir`` and let the sandbox's Argo CD deploy it, then play an incident.

    ``workdir/deploy-config.git`` is the bare origin Argo CD reads; ``workdir/deploy-config``
    the working clone every commit is pushed from. One Application per overlay (automated
    sync, prune, self-heal). Then, live: a CI tag bump of web-frontend staging, the bad CI
    bump of checkout-api production (:data:`BAD_DEPLOY`), and a manual ``kubectl edit`` of
    the production Deployment on a field git does not set. Each deploy is waited for, so
    every app has a real deploy history.
    """
    from kubernetes import client

    from ..cluster.argocd import application_manifest, apply_application

    say = progress or (lambda _m: None)
    work = Path(workdir)
    origin = work / "deploy-config.git"
    demo = remake_demo_repo(work / "deploy-config", origin=origin)
    api = sandbox.api_client()
    url = f"file://{origin.resolve()}"
    apps = {app_name(root): root for root in demo.apps}
    for name, root in apps.items():
        svc, env = root.split("/")[1], root.split("/")[3]
        manifest = application_manifest(
            name, url, root, f"{svc.split('-')[0]}-{env}", labels={"gitops-nb/demo": "true"}
        )
        apply_application(api, manifest)

    _deploy_all(api, list(apps), demo.commits["docs"], timeout)
    say(f"{len(apps)} Applications Synced and Healthy at {demo.commits['docs'][:10]}")
    writer = RepoWriter(demo.path, identity=ONCALL)
    deploys = []
    for svc, env, tag in (("web-frontend", "staging", "5.4.0"), BAD_DEPLOY):
        sha = bump_tag(writer, svc, env, tag)
        writer.push()  # from the clone to the origin Argo CD reads
        _deploy_all(api, list(apps), sha, timeout)
        deploys.append((f"{svc}-{env}", sha))
        say(f"{svc}-{env}: deployed {tag} ({sha[:10]})")
    edit = {
        "namespace": "checkout-production",
        "deployment": "checkout-api",
        "manager": "kubectl-edit",
        "fields": ["metadata.annotations.oncall/note", "spec.revisionHistoryLimit"],
    }
    client.AppsV1Api(api).patch_namespaced_deployment(
        "checkout-api",
        "checkout-production",
        {"metadata": {"annotations": {"oncall/note": "keep fewer ReplicaSets"}}, "spec": {"revisionHistoryLimit": 3}},
        field_manager="kubectl-edit",
    )
    say("checkout-api (production): a manual kubectl edit outside git")
    demo.commits.update({f"deploy-{n}": s for n, s in deploys})
    return DemoDeployment(
        repo=demo,
        apps=apps,
        deploys=deploys,
        bad_sha=deploys[-1][1],
        edit=edit,
        incident_at=pd.Timestamp.now(tz="UTC").ceil("s") + pd.Timedelta(seconds=1),
    )


def reset_demo_incident(
    sandbox: Any, workdir: str | Path, *, timeout: float = 180, progress: Any = None
) -> tuple[str, str]:
    """Put the demo's incident back after a rollback rehearsal; returns (Application, bad sha).

    Forward only, as in real life: the clone is first made equal to the origin (a rehearsal
    that stopped midway may have left a local, unpushed revert: it is dropped), then, if the
    bad tag is no longer in git, CI's bad bump is committed again and pushed (a new commit,
    so the rehearsal reverts a fresh sha). Self-heal is resumed on every demo Application
    paused by gitops-nb, and the apps are waited for until they run the bad sha again.
    Needs the Applications :func:`deploy_demo` made.
    """
    import re

    from ..act.selfheal import resume_self_heal
    from ..cluster.live import Cluster
    from ..errors import ClusterError

    say = progress or (lambda _m: None)
    work = Path(workdir)
    repo_dir, origin = work / "deploy-config", work / "deploy-config.git"
    if not (repo_dir / ".git" / _MARKER).exists() or not (origin / _MARKER).exists():
        raise InputError(f"no deployed demo in {work} (no clone and origin): run `gitops-nb demo` first")
    w = RepoWriter(repo_dir, identity=ONCALL)
    w.git("fetch", "-q", "origin")
    w.git("checkout", "-q", "-f", "main")
    ahead = int(w.git("rev-list", "--count", "origin/main..HEAD").strip())
    w.git("reset", "-q", "--hard", "origin/main")
    if ahead:
        say(f"dropped {ahead} local commit(s) of the clone that were not on origin")
    svc, env, tag = BAD_DEPLOY
    rel = f"apps/{svc}/overlays/{env}/kustomization.yaml"
    live_tag = re.search(r'newTag: "(.*)"', (repo_dir / rel).read_text())
    if live_tag is None or live_tag.group(1) != tag:
        sha = bump_tag(w, svc, env, tag)
        w.push()
        say(f"{svc}-{env}: CI bumped {tag} again ({sha[:10]}), pushed to origin")
    else:
        sha = w.git("log", "-1", "--format=%H", "--", rel).strip()
        say(f"{svc}-{env}: {tag} is still in git ({sha[:10]}): nothing to re-apply")
    apps = sorted(
        app_name(str(p.parent.relative_to(repo_dir))) for p in repo_dir.glob("apps/*/overlays/*/kustomization.yaml")
    )
    cluster = Cluster(kubeconfig=str(sandbox.kubeconfig))
    for app in apps:
        try:
            rec = resume_self_heal(cluster, app, dry_run=False)
        except ClusterError as e:
            raise InputError(f"the demo's Application {app} is not in the sandbox ({e}): run `gitops-nb demo`") from e
        if rec["changed"].iloc[0]:
            say(f"{app}: self-heal resumed")
    _deploy_all(sandbox.api_client(), apps, sha, timeout)
    say(f"{len(apps)} Applications Synced and Healthy at {sha[:10]}: the bad deploy is live again")
    return f"{svc}-{env}", sha
