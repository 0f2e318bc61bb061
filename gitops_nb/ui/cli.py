"""The ``gitops-nb`` command: a thin layer over the library."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import GitOpsNbError, InputError
from ..incident.notebooks import run_notebook

__all__ = ["main"]

REHEARSAL_RUNBOOK = "rollback-by-revert"


def _program() -> str:
    """How to call this command again from any folder: ``gitops-nb`` if that is on PATH, else its full path."""
    import os
    import shlex
    import shutil

    argv0 = sys.argv[0]
    if Path(argv0).name == "gitops-nb":
        found = shutil.which("gitops-nb")
        if found and Path(found).resolve() == Path(argv0).resolve():
            return "gitops-nb"
        return shlex.quote(os.path.abspath(argv0))
    return f"{shlex.quote(sys.executable)} -m gitops_nb"


def _print_rehearsal(work: Path, clone: Path, sha: str, app: str, kubeconfig: Path) -> None:
    """Print the rollback command to practise on the demo's bad deploy, and where its report goes."""
    import shlex

    from ..incident.folder import IncidentFolder
    from ..incident.runbook import load_runbook

    root = work / "incidents"
    n = 1
    while (root / f"DEMO-{n}").exists():  # every rehearsal gets a fresh incident folder
        n += 1
    incident = f"DEMO-{n}"
    steps = load_runbook(REHEARSAL_RUNBOOK)["notebooks"]
    last = steps[-1] if isinstance(steps[-1], str) else steps[-1]["notebook"]
    report = IncidentFolder(root, incident).step_notebook(len(steps), last).with_suffix(".html")
    params = {
        "repo_path": str(clone),
        "sha": sha,
        "app": app,
        "kube_context": "gitops-nb-sandbox",
        "kubeconfig": str(kubeconfig),
        "confirm": "true",
    }
    cmd = " ".join(
        [_program(), "runbook", "run", REHEARSAL_RUNBOOK, "--incident", incident, "--root", shlex.quote(str(root))]
        + [f"-p {shlex.quote(f'{k}={v}')}" for k, v in params.items()]
    )
    print(
        f"\nrehearse the rollback ({app} at {sha[:10]}): pause self-heal, revert in the clone and push to the "
        "origin Argo CD reads, wait until Argo CD runs the revert, resume self-heal:"
    )
    print(f"  {cmd}")
    print(f"the report will be: {report}")
    reset = f"{_program()} demo --workdir {shlex.quote(str(work))} --reset"
    print(f"(without -p confirm=true it is a dry run; afterwards `{reset}` puts the incident back to rehearse again)")


def _cmd_demo(args: argparse.Namespace) -> int:
    from ..results import load_results
    from ..sandbox.demo import remake_demo_repo

    work = Path(args.workdir).resolve()
    if args.reset:
        if args.git_only:
            raise InputError("--reset puts the sandbox's incident back: it does not go with --git-only")
        from ..sandbox.control import Sandbox, main_progress
        from ..sandbox.demo import reset_demo_incident

        sb = Sandbox()
        sb.up(progress=main_progress)
        t = time.monotonic()
        app, sha = reset_demo_incident(sb, work, progress=main_progress)
        main_progress(f"incident back in {time.monotonic() - t:.1f}s")
        _print_rehearsal(work, work / "deploy-config", sha, app, sb.kubeconfig)
        return 0
    params: dict[str, Any] = {
        "apps": "",
        "argocd_namespace": "argocd",
        "snapshot_dir": "",
        "output_dir": str(work / "results"),
    }
    if args.git_only:
        demo = remake_demo_repo(work / "deploy-config")
        print(f"demo deploy-config repo: {demo.path} ({len(demo.commits)} commits, apps: {', '.join(demo.apps)})")
        params.update(
            repo_path=str(demo.path),
            at=demo.incident_at.isoformat(),
            window=args.window or "3h",
            kube_context="",
            kubeconfig="",
        )
        expected = demo.commits["checkout-prod-bad"]
    else:
        from ..sandbox.control import Sandbox, main_progress
        from ..sandbox.demo import deploy_demo

        sb = Sandbox()
        t = time.monotonic()
        sb.up(progress=main_progress)
        main_progress(f"sandbox up in {time.monotonic() - t:.1f}s; deploying the demo with Argo CD")
        dep = deploy_demo(sb, work, progress=main_progress)
        print(f"demo deploy-config clone: {dep.repo.path} (pushes to {dep.repo.origin}, which Argo CD reads)")
        print(f"Applications: {', '.join(dep.apps)}")
        params.update(
            repo_path=str(dep.repo.path),
            at=dep.incident_at.isoformat(),
            window=args.window or "15m",
            kube_context="gitops-nb-sandbox",
            kubeconfig=str(sb.kubeconfig),
        )
        expected = dep.bad_sha
    print(f"demo incident time T: {params['at']}")
    if args.no_run:
        if not args.git_only:
            _print_rehearsal(work, dep.repo.path, dep.bad_sha, dep.bad_app, sb.kubeconfig)
        return 0
    out = work / "what_changed.ipynb"
    print("running notebooks/what_changed.ipynb with papermill ...", flush=True)
    run_notebook("what_changed", out, params)
    _, summary = load_results(work / "results")
    top = summary.get("top_culprit") or {}
    print(f"executed notebook: {out}")
    print(f"report (HTML):     {out.with_suffix('.html')}")
    print(f"results:           {work / 'results'} (parquet + csv + summary.json)")
    print(f"commits in window: {summary['commits']}, semantic changes: {summary['manifest_changes']}")
    if top:
        mark = "(the planted bad deploy)" if top["sha"] == expected else "(NOT the planted bad deploy)"
        print(f"top culprit:       {top['sha'][:10]} {top['summary']} ({top['time']}) {mark}")
    if not args.git_only:
        print(
            "the sandbox keeps running: `gitops-nb sandbox down` stops it; `eval $(gitops-nb sandbox env)` for kubectl"
        )
        _print_rehearsal(work, dep.repo.path, dep.bad_sha, dep.bad_app, sb.kubeconfig)
    return 0


def _cmd_what_changed(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..investigate.timeline import investigate

    if (args.context or args.contexts) and args.snapshot:
        raise InputError("give --context/--contexts (live clusters) or --snapshot (saved evidence), not both")
    if args.recording and (args.snapshot or args.contexts):
        raise InputError("give --recording (a recording store) or --snapshot / --contexts, not both")
    inv = investigate(
        args.repo,
        args.at,
        args.window,
        [a for a in args.apps.split(",") if a] or None,
        kube_context=args.context or None,
        kubeconfig=args.kubeconfig or None,
        argocd_namespace=args.argocd_namespace,
        snapshot_dir=args.snapshot or None,
        recording=args.recording or None,
        contexts=args.contexts or None,
    )
    with pd.option_context("display.width", 200, "display.max_colwidth", 70, "display.max_columns", 20):
        print(f"T = {inv.at.isoformat()}  window = {inv.window}  repo = {inv.repo.path}")
        print(
            inv.timeline[["time", "cluster", "app", "sha", "author", "summary", "rank"]]
            .assign(sha=inv.timeline["sha"].str[:10])
            .to_string(index=False)
        )
        if inv.commits.empty:
            from ..investigate.timeline import explain_empty

            print(f"\n{explain_empty(inv.repo, inv.at, inv.window)}")
        print("\nlikely culprits:")
        print(inv.culprits[["rank", "time", "summary", "score", "why"]].to_string(index=False))
    for f in inv.timeline.attrs.get("failures") or []:
        print(f"gitops-nb: NOT READ: {f['cluster']} ({f['query']}): {f['reason']}", file=sys.stderr)
    if args.out:
        print(f"\nsaved to {inv.save(args.out, progress=lambda m: print(m, file=sys.stderr, flush=True))}")
    return 0


def _cmd_secrets_audit(args: argparse.Namespace) -> int:
    """Exit 0: no unrotated plaintext secret in history; 1: some (the CI gate); 2: bad input."""
    import pandas as pd

    from ..git.repo import DeployRepo

    if args.context and args.snapshot:
        raise InputError("give --context (a live cluster) or --snapshot (saved evidence), not both")
    evidence: Any = None
    if args.snapshot:
        from ..cluster.snapshot import Snapshot

        evidence = Snapshot(args.snapshot)
    elif args.context:
        from ..cluster.live import Cluster

        evidence = Cluster(args.context, kubeconfig=args.kubeconfig or None, argocd_namespace=args.argocd_namespace)
    repo = DeployRepo(args.repo)
    quiet = args.format != "table"
    found = repo.secret_findings(
        since=args.since or None,
        until=args.until or None,
        evidence=evidence,
        rotated=args.rotated or None,
        progress=None if quiet else (lambda m: print(m, file=sys.stderr, flush=True)),
    )
    open_ = found[~found["rotated"]]
    if args.format == "json":
        print(found.to_json(orient="records", date_format="iso"))
    elif args.format == "csv":
        print(found.to_csv(index=False), end="")
    else:
        cols = ["committed_at", "sha", "author", "path", "kind", "name", "key", "rule", "fingerprint"]
        cols += ["still_at_head", "removed_by_sha", "deployed", "rotated"]
        with pd.option_context("display.width", 250, "display.max_colwidth", 50, "display.max_columns", 20):
            shown = found[cols].assign(sha=found["sha"].str[:10], removed_by_sha=found["removed_by_sha"].str[:10])
            print(shown.to_string(index=False) if len(found) else "no plaintext secret found in the history read")
        skipped = found.attrs.get("skipped") or {}
        if skipped:
            print(f"not read: {', '.join(f'{n} {why}' for why, n in sorted(skipped.items()))} files", file=sys.stderr)
        values = open_["fingerprint"].nunique()
        print(
            f"\n{len(found)} findings, {found['fingerprint'].nunique()} distinct values, {values} not marked rotated"
            + (
                f": rotate each (see runbooks/secrets-rotation.md), then list its fingerprint in "
                f"{args.rotated or '.gitops-nb-rotated'}"
                if values
                else ""
            ),
            file=sys.stderr,
        )
    return 1 if len(open_) else 0


def _cmd_repo(args: argparse.Namespace) -> int:
    from ..git.repo import DeployRepo

    repo = DeployRepo(args.path)
    res = repo.optimize()
    before, after = res["before"], res["after"]
    state = "already had" if before["bloom"] and before["commits"] == after["commits"] else "now has"
    print(
        f"{repo.path} {state} a commit-graph with changed-path filters ({after['commits']} commits): "
        "per-app history queries skip commits that do not touch the app"
    )
    print(
        "changed: the clone's local metadata only (.git/objects/info/commit-graph); no commit, ref, "
        "config or work-tree file; nothing to push. `git maintenance start` keeps it up to date.",
        file=sys.stderr,
    )
    return 0


def _cmd_sandbox(args: argparse.Namespace) -> int:
    from ..sandbox.control import Sandbox, main_progress

    sb = Sandbox(spokes=args.spokes)
    action = args.action
    if action == "build":
        print(sb.build())  # progress on stderr (one "up to date" line when cached); stdout: the bin dir
    elif action == "up":
        t = time.monotonic()
        sb.up(progress=main_progress)
        main_progress(f"up: all components ready in {time.monotonic() - t:.1f}s")
        print(sb.env())
    elif action == "down":
        stopped = sb.down()
        main_progress(f"stopped: {', '.join(stopped) if stopped else 'nothing was running'}")
    elif action == "status":
        st = sb.status()
        print(st.to_string(index=False))
        return 0 if bool(st["ready"].all()) else 1
    elif action == "env":
        print(sb.env())
    elif action == "reset":
        sb.reset()
        main_progress(f"stopped and removed {sb.state}")
    elif action == "demo":
        from ..sandbox.demo import deploy_demo

        sb.up(progress=main_progress)
        dep = deploy_demo(sb, Path(args.workdir).resolve(), progress=main_progress)
        print(f"demo repo: {dep.repo.path} (a clone; Argo CD reads its origin {dep.repo.origin})")
        print(f"applications: {', '.join(dep.apps)}")
        print(sb.env())
    return 0


def _cmd_record(args: argparse.Namespace) -> int:
    from ..cluster.recorder import record, recorder_manifests

    if args.what == "manifests":
        import yaml

        docs = recorder_manifests(
            args.namespace,
            args.store or "/data/recording",
            image=args.image,
            argocd_namespace=args.argocd_namespace,
        )
        print(yaml.safe_dump_all(docs, sort_keys=False), end="")
        return 0
    if not args.store:
        raise InputError("record needs --store DIR (or s3://bucket/prefix): where the recording goes")
    mapping: dict[str, str] = {}
    for d in args.destination:
        dest, sep, ctx = d.rpartition("=")
        if not sep or not dest or not ctx:
            raise InputError(f"--destination {d!r}: give SERVER_OR_NAME=CONTEXT, e.g. https://10.0.0.1:6443=eu-1")
        mapping[dest] = ctx
    stats = record(
        args.context or [None],
        args.store,
        kubeconfig=args.kubeconfig,
        argocd_namespace=args.argocd_namespace,
        destinations=mapping,
        argocd_secrets=args.argocd_secrets,
        retain=args.retain,
        status_seconds=args.status_seconds,
        compact_seconds=args.compact_minutes * 60,
    )
    print(f"recorded {sum(s.rows for s in stats.values())} rows into {args.store}", file=sys.stderr)
    return 0


def _cmd_rbac(args: argparse.Namespace) -> int:
    from ..cluster.rbac import rbac_yaml

    print(rbac_yaml(args.namespace), end="")
    return 0


def _cmd_notebooks(args: argparse.Namespace) -> int:
    from ..incident.notebooks import copy_notebooks, notebooks_dir

    if args.action == "list":
        for nb in sorted(notebooks_dir().glob("*.ipynb")):
            print(nb.stem)
        return 0
    if not args.dest:
        raise InputError("give the folder to copy the notebooks into: gitops-nb notebooks copy DIR")
    written = copy_notebooks(args.dest, overwrite=args.overwrite)
    for p in written:
        print(p)
    kept = len(list(notebooks_dir().glob("*.ipynb"))) - len(written)
    if kept:
        print(f"{kept} notebook(s) already in {args.dest} were kept (--overwrite replaces them)", file=sys.stderr)
    print(f"open them with: jupyter lab {args.dest}", file=sys.stderr)
    return 0


def _cmd_runbook(args: argparse.Namespace) -> int:
    from ..incident.runbook import list_runbooks, load_runbook, run_runbook

    if args.action == "list":
        for name in list_runbooks():
            book = load_runbook(name)
            print(
                f"{name}: {book.get('title', '')} ({' -> '.join(n if isinstance(n, str) else n['notebook'] for n in book['notebooks'])})"
            )
        return 0
    if not args.name or not args.incident:
        raise InputError(
            "give the runbook's name and --incident ID: gitops-nb runbook run NAME --incident INC-1 -p key=value"
        )
    params: dict[str, Any] = {}
    for kv in args.param:
        key, sep, value = kv.partition("=")
        if not sep or not key:
            raise InputError(f"-p takes key=value, got {kv!r}")
        params[key] = {"true": True, "false": False}.get(value.lower(), value)
    done = run_runbook(
        args.name, args.incident, params, root=args.root, progress=lambda m: print(m, file=sys.stderr, flush=True)
    )
    for p in done:
        print(p)
    return 0


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gitops-nb", description="Incident notebooks and runbooks for GitOps with Argo CD."
    )
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser(
        "demo",
        help="start the sandbox, deploy the demo deploy-config repo with Argo CD, play an "
        "incident, and run the what-changed notebook on it",
    )
    d.add_argument(
        "--workdir", default="out/demo", help="where the repo, executed notebook and results go (default: out/demo)"
    )
    d.add_argument("--window", default=None, help="how far before T to look (default: 15m on the sandbox, 3h git-only)")
    d.add_argument("--git-only", action="store_true", help="no sandbox: the demo repo and the git-side notebook only")
    d.add_argument("--no-run", action="store_true", help="only build (and deploy) the demo repo")
    d.add_argument(
        "--reset",
        action="store_true",
        help="after a rollback rehearsal: put the incident back (CI's bad bump pushed again, self-heal "
        "resumed, the bad deploy live) and print the command to rehearse again",
    )
    d.set_defaults(func=_cmd_demo)

    w = sub.add_parser("what-changed", help="print the timeline and likely culprits around time T")
    w.add_argument("repo", help="path of a local deploy-config clone")
    w.add_argument("--at", default="now", help="incident time: ISO-8601 with zone, 'now', or '-30m' (default: now)")
    w.add_argument("--window", default="2h", help="how far before T to look (default: 2h)")
    w.add_argument("--apps", default="", help="comma-separated apps (paths or path parts) to keep")
    w.add_argument(
        "--out",
        default=None,
        help="also save the frames (parquet, csv, summary.json) here, and a recording's evidence (recording/)",
    )
    w.add_argument(
        "--context", default="", help="add the cluster side from this kube context (Argo CD deploys, events ...)"
    )
    w.add_argument(
        "--kubeconfig", default="", help="kubeconfig file for --context (default: $KUBECONFIG or ~/.kube/config)"
    )
    w.add_argument("--argocd-namespace", default="argocd", help="namespace of Argo CD's Applications (default: argocd)")
    w.add_argument("--snapshot", default="", help="add the cluster side from a saved snapshot directory instead")
    w.add_argument(
        "--recording",
        default="",
        help="add the cluster side from a recording store (DIR or s3://bucket/prefix, as written by "
        "`gitops-nb record`), as of T; --context then names the recorded cluster",
    )
    w.add_argument(
        "--contexts",
        default="",
        help="more kube contexts read with --context as one fleet (hubs, spokes), comma-separated; a cluster "
        "that cannot be read is named, and the others' rows are shown",
    )
    w.set_defaults(func=_cmd_what_changed)

    a = sub.add_parser(
        "secrets-audit",
        help="every plaintext secret ever committed to the repo (where, who, when, still at HEAD, deployed); "
        "exits 1 while any is not marked rotated (a CI gate), 0 when none, 2 on bad input",
    )
    a.add_argument("repo", help="path of a local deploy-config clone (full history: not shallow)")
    a.add_argument("--since", default="", help="read history from this time on (ISO-8601 or -30d; default: all)")
    a.add_argument("--until", default="", help="report commits up to this time (default: now)")
    a.add_argument(
        "--rotated",
        default="",
        help="file of fingerprints whose values were rotated, one a line (default: .gitops-nb-rotated at HEAD)",
    )
    a.add_argument("--format", choices=["table", "json", "csv"], default="table", help="output (default: table)")
    a.add_argument("--context", default="", help="fill deployed/deployed_at from this kube context's Argo CD")
    a.add_argument("--kubeconfig", default="", help="kubeconfig file for --context")
    a.add_argument("--argocd-namespace", default="argocd", help="namespace of Argo CD's Applications (default: argocd)")
    a.add_argument("--snapshot", default="", help="fill deployed/deployed_at from a saved snapshot directory instead")
    a.set_defaults(func=_cmd_secrets_audit)

    g = sub.add_parser("repo", help="maintain a local deploy-config clone (optimize: faster per-app history)")
    g.add_argument(
        "action",
        choices=["optimize"],
        help="optimize: write a commit-graph with changed-path filters (git commit-graph write --reachable "
        "--changed-paths) so per-app history skips unrelated commits; changes the clone's local metadata "
        "only (.git/objects/info), never commits, refs or files; safe to run again",
    )
    g.add_argument("path", help="path of a local deploy-config clone")
    g.set_defaults(func=_cmd_repo)

    rc = sub.add_parser(
        "record",
        help="record clusters continuously into a store (Applications, managed objects, events, ReplicaSets, "
        "Secret metadata) until Ctrl-C / SIGTERM; `record manifests` prints what runs it in a cluster",
    )
    rc.add_argument(
        "what",
        nargs="?",
        choices=["manifests"],
        help="manifests: print the ServiceAccount, read-only ClusterRole, binding and Deployment (YAML) instead",
    )
    rc.add_argument(
        "--context",
        action="append",
        default=[],
        help="a kube context to record (repeatable; default: the current one, or in-cluster config in a pod); "
        "a hub's apps' objects are recorded on the clusters they deploy to",
    )
    rc.add_argument(
        "--destination",
        action="append",
        default=[],
        metavar="SERVER_OR_NAME=CONTEXT",
        help="read an Application destination (server URL or cluster name) through this kube context "
        "(repeatable; default: the context whose server matches)",
    )
    rc.add_argument(
        "--argocd-secrets",
        action="store_true",
        help="also resolve destinations from Argo CD's cluster Secrets on the hub (read-only; never shown)",
    )
    rc.add_argument("--store", default="", help="where to record: a directory or s3://bucket/prefix")
    rc.add_argument("--retain", default=None, help="drop day partitions older than this (e.g. 30d; default: keep all)")
    rc.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    rc.add_argument(
        "--argocd-namespace", default="argocd", help="namespace of Argo CD's Applications (default: argocd)"
    )
    rc.add_argument(
        "--status-seconds", type=float, default=30.0, help="seconds between status lines on stderr (default: 30)"
    )
    rc.add_argument(
        "--compact-minutes",
        type=float,
        default=10.0,
        help="merge each partition's small files this often (default: 10; 0: never)",
    )
    rc.add_argument("--namespace", default="gitops-nb", help="manifests: the recorder's namespace (default: gitops-nb)")
    rc.add_argument(
        "--image", default="python:3.12-slim", help="manifests: the container image (default: python:3.12-slim)"
    )
    rc.set_defaults(func=_cmd_record)

    s = sub.add_parser("sandbox", help="the local Kubernetes + Argo CD sandbox (build, up, down, status, env, demo)")
    s.add_argument(
        "action",
        choices=["build", "up", "down", "status", "env", "demo", "reset"],
        help="build: compile and cache the binaries; up: start everything and wait until ready "
        "(a no-op when up); down: stop what up started; status: each component's state; "
        "env: print `export KUBECONFIG=...` for eval; demo: up, then deploy the demo "
        "deploy-config repo with Argo CD; reset: down and delete the sandbox's state",
    )
    s.add_argument(
        "--workdir", default="out/sandbox-demo", help="where `demo` puts its repo (default: out/sandbox-demo)"
    )
    s.add_argument(
        "--spokes",
        type=int,
        default=0,
        metavar="N",
        help="with up: also start N spoke clusters (0-4; each its own etcd, API server, controllers and kwok), "
        "registered in the hub's Argo CD as clusters spoke-1.. and in the kubeconfig as contexts gitops-nb-spoke-1..",
    )
    s.set_defaults(func=_cmd_sandbox)

    b = sub.add_parser(
        "rbac",
        help="print the least-privilege roles: an investigator ClusterRole (read-only, no Secrets) and a "
        "responder Role (patch Applications in Argo CD's namespace), with which runbook needs which",
    )
    b.add_argument(
        "--namespace", default="argocd", help="Argo CD's namespace, for the responder Role (default: argocd)"
    )
    b.set_defaults(func=_cmd_rbac)

    n = sub.add_parser("notebooks", help="the notebooks this package ships: list them, or copy them out to open")
    n.add_argument("action", choices=["list", "copy"], help="list: their names; copy: write them into DEST")
    n.add_argument("dest", nargs="?", help="with copy: the folder to copy the notebooks into")
    n.add_argument("--overwrite", action="store_true", help="replace notebooks already in DEST")
    n.set_defaults(func=_cmd_notebooks)

    r = sub.add_parser("runbook", help="run an on-call runbook's notebooks in order into incidents/ID/")
    r.add_argument("action", choices=["run", "list"], help="run: execute a runbook; list: the runbooks there are")
    r.add_argument("name", nargs="?", help="the runbook (see `gitops-nb runbook list`)")
    r.add_argument("--incident", help="incident id: the folder under --root the notebooks are written to")
    r.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a notebook parameter (repeatable); true/false become booleans; confirm=true makes it act",
    )
    r.add_argument("--root", default="incidents", help="where incident folders go (default: incidents)")
    r.set_defaults(func=_cmd_runbook)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``gitops-nb`` and ``python -m gitops_nb``."""
    args = _parser().parse_args(_relative_times(list(sys.argv[1:] if argv is None else argv)))
    try:
        return int(args.func(args))
    except GitOpsNbError as e:
        print(f"gitops-nb: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # an unwritable --out or workdir: say which path, not a traceback
        print(f"gitops-nb: error: cannot write {e.filename or 'a file'}: {e.strerror or e}", file=sys.stderr)
        return 2


def _relative_times(argv: list[str]) -> list[str]:
    """``--at -30m`` as the help suggests: argparse would take ``-30m`` for an option, so join it."""
    out: list[str] = []
    for i, a in enumerate(argv):
        if (
            i
            and argv[i - 1] in ("--at", "--window", "--since", "--until")
            and a.startswith("-")
            and out
            and out[-1] == argv[i - 1]
        ):
            out[-1] = f"{out[-1]}={a}"
        else:
            out.append(a)
    return out


if __name__ == "__main__":  # python -m gitops_nb.ui.cli, as well as python -m gitops_nb
    raise SystemExit(main())
