"""Write the notebooks in notebooks/ (outputs stripped). This script is their one source: edit it, run
it, commit both (tests/test_notebooks.py fails when a committed notebook differs from its output).
It keeps their shape consistent: title, one parameters cell, thin library calls.

    .venv/bin/python tools/make_notebooks.py            # writes notebooks/
    .venv/bin/python tools/make_notebooks.py OUT_DIR    # writes elsewhere (the test compares)
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat as nbf

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "notebooks"
md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell


def params(text: str) -> nbf.NotebookNode:
    cell = code("\n".join(line for line in text.strip().splitlines() if line.strip()))
    cell.metadata["tags"] = ["parameters"]
    return cell


def write(name: str, cells: list[nbf.NotebookNode]) -> None:
    nb = nbf.v4.new_notebook()
    for i, cell in enumerate(cells):  # stable ids: regenerating a notebook changes only what changed
        cell.id = f"{name.replace('_', '-')}-{i}"
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbf.write(nb, OUT / f"{name}.ipynb")


REPO_PARAMS = """
repo_path = "."  # local clone of the deploy-config repo
at = "now"  # incident time T: ISO-8601 with zone, now, or relative like -30m
window = "2h"  # how far before T to look
"""

CLUSTER_PARAMS = """
kube_context = ""  # kubeconfig context for the cluster side; empty means git only
contexts = ""  # more contexts read with it as one fleet (hubs, spokes), comma-separated; empty means just kube_context
kubeconfig = ""  # kubeconfig file; empty means KUBECONFIG or ~/.kube/config
argocd_namespace = "argocd"  # namespace of Argo CD's Applications
snapshot_dir = ""  # read the cluster side from a saved snapshot instead of a live cluster
recording = ""  # or from a recording store (DIR or s3://bucket/prefix) as of T; kube_context then names the recorded cluster
"""

write(
    "what_changed",
    [
        md(
            "# What changed at T?\n\nThe deploy-config repo's history around the incident time: commits, semantic "
            "manifest changes, the Kustomize apps they reach, and (with a cluster or a snapshot) Argo CD's deploys, "
            "rollouts, events and manual field edits, in one timeline with the likely culprits ranked. "
            "Times are UTC, with your local time beside them."
        ),
        params(
            REPO_PARAMS
            + """apps = ""  # comma-separated apps to keep: Argo CD app names, Kustomize roots or parts like checkout-api; empty means all
"""
            + CLUSTER_PARAMS
            + """
output_dir = "results"  # where the machine-readable results are written
"""
        ),
        code("""import gitops_nb as g

inv = g.investigate(repo_path, at, window, [a for a in apps.split(",") if a] or None,
                    kube_context=kube_context or None, kubeconfig=kubeconfig or None,
                    argocd_namespace=argocd_namespace, snapshot_dir=snapshot_dir or None,
                    recording=recording or None, contexts=contexts or None)
print(f"T = {g.describe_time(inv.at)}; window {inv.window} before T; repo {inv.repo.path}; cluster: {inv.cluster}")
for f in inv.timeline.attrs.get("failures") or []:  # a fleet's cluster that could not be read: rows are partial
    print(f"NOT READ: {f['cluster']} ({f['query']}): {f['reason']}")"""),
        md("## Likely culprits"),
        code("g.with_local_time(inv.culprits)"),
        md("## Timeline"),
        code("g.show(g.plot_timeline(inv.timeline, inv.at))"),
        md("## Commits in the window (committed at, and deployed at when a cluster is given)"),
        code('inv.rows("git")[["time", "deployed_at", "sha", "author", "summary", "app", "argocd_app"]]'),
        md("## Semantic changes (one row per changed field)"),
        code(
            'inv.changes[["sha", "committed_at", "author", "path", "kind", "name", "field", "old", "new", "change", "via"]]'
        ),
        md("## Argo CD deploys, rollouts and manual edits"),
        code('inv.rows("argocd")[["time", "argocd_app", "sha", "summary", "detail"]]'),
        code('inv.rows("rollout")[["time", "argocd_app", "summary", "detail"]]'),
        code('inv.rows("field-edit")[["time", "argocd_app", "author", "summary", "detail"]]'),
        md("## Events"),
        code(
            'inv.timeline[inv.timeline["source"].isin(["k8s-event", "argocd-event"])][["time", "source", "argocd_app", "summary"]]'
        ),
        md(
            "## Saved results\n\n`timeline`, `culprits`, `commits`, `manifest_changes` and `apps` as Parquet and CSV, "
            "and `summary.json`, under `output_dir`; with a live cluster also a snapshot of its evidence under "
            "`output_dir/evidence` (read it later with `snapshot_dir`)."
        ),
        code("print(inv.save(output_dir, progress=print))\ninv.summary()"),
    ],
)

write(
    "drift",
    [
        md(
            "# Drift: what differs from git, and who changed it\n\nEvery Application of a context that is not "
            "Synced, its resources that differ, and the field edits made outside git (from `managedFields`): "
            "how a 2am `kubectl edit` is found."
        ),
        params("""
kube_context = ""  # kubeconfig context; empty means the current one
contexts = ""  # more contexts read with it as one fleet (hubs, spokes), comma-separated; empty means just kube_context
kubeconfig = ""  # kubeconfig file; empty means KUBECONFIG or ~/.kube/config
argocd_namespace = "argocd"  # namespace of Argo CD's Applications
since = ""  # only field edits since this time, ISO-8601 or relative like -24h; empty means all
recording = ""  # read a recording store (DIR or s3://bucket/prefix) instead of the live cluster; kube_context names the recorded cluster
at = "now"  # with recording: the time the drift is shown as of
output_dir = "drift"  # where the machine-readable results are written
"""),
        code("""import gitops_nb as g

if recording:
    cluster = g.Recording(recording, cluster=kube_context or None, at=at)
elif contexts:
    cluster = g.Fleet(f"{kube_context},{contexts}", kubeconfig=kubeconfig or None, argocd_namespace=argocd_namespace)
else:
    cluster = g.Cluster(kube_context or None, kubeconfig=kubeconfig or None, argocd_namespace=argocd_namespace)
apps = cluster.applications()
apps[["name", "sync_status", "health_status", "sync_revision", "automated", "self_heal", "reconciled_at"]]"""),
        md("## Out of sync now"),
        code("out_of_sync = g.drift(cluster)\nout_of_sync"),
        md("## Changes made outside git"),
        code(
            'edits = g.manual_edits(cluster, since=since or None)\ng.with_local_time(edits, "time")[["time", "time_local", "apps", "kind", "name", "manager", "operation", "fields"]]'
        ),
        md(
            "## How long each field disagreed with git (from a recording)\n\nFrom a change outside git until "
            "Argo CD wrote the field again (a sync or a self-heal); `ongoing` spans still disagree. Only a "
            "recording keeps past values: with a live cluster this section says so and stays empty."
        ),
        code(
            "spans = g.drift_spans(cluster, since=since or None, until=at if recording else None)\n"
            'if spans.attrs.get("why_empty"):\n    print(spans.attrs["why_empty"])\n'
            'g.with_local_time(spans, "set_at")[["set_at", "set_at_local", "apps", "kind", "name", "path", '
            '"value_before", "value_outside", "set_by", "ended_at", "ended_by", "duration_text", "ongoing"]]'
        ),
        md("## Saved results"),
        code(
            'print(g.save_results(output_dir, {"applications": apps, "drift": out_of_sync, "manual_edits": edits, '
            '"drift_spans": spans}, {"context": cluster.context}))'
        ),
    ],
)

write(
    "secrets_audit",
    [
        md(
            "# Secrets ever committed\n\nGit remembers: every plaintext secret value ever committed to the deploy "
            "repo (a `Secret`'s data, a `secretGenerator`, secret-looking keys in Helm values, ConfigMaps and env, "
            "kubeconfigs, private keys, cloud and API tokens), where, by whom and when; whether it is still at HEAD; "
            "whether Argo CD deployed a revision holding it; what must be rotated. No value is ever shown: each is "
            "known by a salted fingerprint. Rotation advice per rule: `runbooks/secrets-rotation.md`."
        ),
        params("""
repo_path = "."  # local clone of the deploy-config repo (full history, not shallow)
since = ""  # read history from this time on, ISO-8601 or relative like -30d; empty means all of it
kube_context = ""  # kubeconfig context to tell which findings Argo CD deployed; empty means none
kubeconfig = ""  # kubeconfig file; empty means KUBECONFIG or ~/.kube/config
argocd_namespace = "argocd"  # namespace of Argo CD's Applications
snapshot_dir = ""  # read the deploys from a saved snapshot instead of a live cluster
rotated = ""  # file of fingerprints already rotated; empty means .gitops-nb-rotated in the repo at HEAD
output_dir = "secrets_audit"  # where the machine-readable results are written
"""),
        code("""import gitops_nb as g

evidence = (
    g.Snapshot(snapshot_dir)
    if snapshot_dir
    else g.Cluster(kube_context, kubeconfig=kubeconfig or None, argocd_namespace=argocd_namespace)
    if kube_context
    else None
)
repo = g.DeployRepo(repo_path)
findings = repo.secret_findings(since=since or None, evidence=evidence, rotated=rotated or None, progress=print)
print(f"{len(findings)} findings, {findings['fingerprint'].nunique()} distinct values; not read: {findings.attrs['skipped'] or 'none'}")"""),
        md("## To rotate: values not marked rotated, the deployed ones first"),
        code(
            'todo = findings[~findings["rotated"]].sort_values(["deployed", "still_at_head", "committed_at"], ascending=False)\n'
            'todo.groupby(["fingerprint", "rule"], dropna=False).agg(first_seen=("committed_at", "min"), '
            'where=("path", lambda p: sorted(set(p))), still_at_head=("still_at_head", "any"), '
            'deployed=("deployed", "max"), commits=("sha", "nunique")).reset_index()'
        ),
        md("## Every finding (newest first)"),
        code(
            'g.with_local_time(findings, "committed_at")[["committed_at", "committed_at_local", "sha", "author", "path", '
            '"kind", "name", "key", "rule", "fingerprint", "still_at_head", "removed_by_sha", "deployed", "deployed_at", "rotated"]]'
        ),
        md("## Saved results"),
        code(
            'print(g.save_results(output_dir, {"secret_findings": findings}, {"repo": repo.path, "since": since, '
            '"findings": len(findings), "unrotated_values": int(todo["fingerprint"].nunique()), '
            '"skipped": findings.attrs["skipped"]}))'
        ),
    ],
)

ACT_CLUSTER = """
kube_context = ""  # kubeconfig context; empty means the current one
kubeconfig = ""  # kubeconfig file; empty means KUBECONFIG or ~/.kube/config
argocd_namespace = "argocd"  # namespace of Argo CD's Applications
"""

write(
    "pause_self_heal",
    [
        md(
            "# Pause (or resume) self-heal\n\nTurns off Argo CD's self-heal for one Application while you hot-patch, "
            "storing the exact previous sync policy, who, when and why in annotations; `action = resume` restores it "
            "exactly. **Dry run unless `confirm = True`.** Re-running is safe: both actions are idempotent."
        ),
        params(
            """
app = ""  # the Argo CD Application (not needed for resume-expired)
action = "pause"  # pause, resume, or resume-expired (every pause past its expiry)
reason = ""  # why, stored with the pause and shown in the report
mode = "self-heal"  # self-heal turns off selfHeal only; auto-sync turns off automated sync
expires = ""  # optional expiry noted on the pause, like 2h
confirm = False  # True to really change the Application; False is a dry run
"""
            + ACT_CLUSTER
            + """
output_dir = "pause"  # where the action records are written
"""
        ),
        code("""import gitops_nb as g

cluster = g.Cluster(kube_context or None, kubeconfig=kubeconfig or None, argocd_namespace=argocd_namespace)
before = cluster.applications().query("name == @app")
before[["name", "sync_status", "health_status", "automated", "self_heal", "prune"]]"""),
        code("""if action == "pause":
    record = g.pause_self_heal(cluster, app, reason, mode=mode, expires=expires or None, dry_run=not confirm)
elif action == "resume-expired":
    record = g.resume_expired(cluster, dry_run=not confirm)
else:
    record = g.resume_self_heal(cluster, app, dry_run=not confirm)
record"""),
        code(
            'cluster.applications().query("name == @app or pause_expired")'
            '[["name", "automated", "self_heal", "paused_by", "pause_expires", "pause_expired", "sync_status"]]'
        ),
        code('print(g.save_records(output_dir, [record], {"app": app, "action": action, "confirm": confirm}))'),
    ],
)

write(
    "revert_and_verify",
    [
        md(
            "# Revert and verify\n\nThe bad commit, then: pause self-heal, `git revert` and push, refresh, wait until "
            "Argo CD is Synced and Healthy at exactly the revert's revision with the rollout complete, resume. "
            "**Dry run unless `confirm = True`.** Every step is idempotent: after a failure midway, fix the cause and "
            "run the notebook again."
        ),
        params(
            """
repo_path = "."  # local clone of the deploy-config repo, on the branch Argo CD tracks
sha = ""  # the bad commit, full or abbreviated
app = ""  # the Argo CD Application that deployed it
incident = ""  # incident id, written as a trailer in the revert commit
remote = "origin"  # the remote Argo CD reads
pause = True  # pause self-heal while reverting, and resume after
timeout = "5m"  # how long to wait for convergence
confirm = False  # True to really pause, revert, push and resume; False is a dry run
"""
            + ACT_CLUSTER
            + """
output_dir = "revert"  # where the action records and transitions are written
"""
        ),
        code("""import gitops_nb as g

repo = g.DeployRepo(repo_path)
cluster = g.Cluster(kube_context or None, kubeconfig=kubeconfig or None, argocd_namespace=argocd_namespace)
bad = repo.resolve(sha)
repo.commits(rev=bad).head(1)[["short_sha", "committed_at", "author", "subject", "files"]]"""),
        md("## What the bad commit changed (the revert undoes exactly this)"),
        code('repo.manifest_changes(rev=bad).query("sha == @bad")[["path", "kind", "name", "field", "old", "new"]]'),
        md(
            "## Roll back: pause self-heal, revert and push, refresh, wait for convergence at the revert, resume\n\n"
            "One library call (`gitops_nb.rollback`, the same the incident console makes). Each action's record is "
            "appended to the audit trail as soon as it is taken."
        ),
        code("""done = g.rollback(repo, cluster, bad, app, incident=incident or None, remote=remote, pause=pause,
                  timeout=timeout, dry_run=not confirm, progress=print,
                  on_record=lambda rec: g.save_records(output_dir, [rec]))
revert_sha, transitions = done.revert_sha, done.transitions
g.with_local_time(transitions, "time") if transitions is not None else None"""),
        md("## Summary"),
        code("""summary = {"app": app, "bad": bad, "revert": revert_sha, "confirm": confirm, "incident": incident,
           "converged": done.converged}
out = g.save_records(output_dir, [], summary)
if transitions is not None:
    g.save_results(out / "convergence", {"transitions": transitions})
print(out)
g.with_local_time(done.actions, "when")"""),
    ],
)

write(
    "post_incident_report",
    [
        md(
            "# Post-incident report\n\nEverything an incident folder holds: the notebooks that ran (and whether "
            "they succeeded), every action taken (what, target, before, after, who, when, dry run), the likely "
            "culprits found and the convergence proof. Export it as HTML with the code hidden "
            "(`gitops-nb runbook run` does)."
        ),
        params("""
incident_dir = "."  # the incident folder, like incidents/INC-1234
incident = ""  # the incident id, for the title
"""),
        code("""from pathlib import Path

import gitops_nb as g

print(f"Incident {incident or Path(incident_dir).name}: report made {g.describe_time(g.parse_at('now'))}")
g.incident_summary(incident_dir)"""),
        md("## Actions taken"),
        code('g.with_local_time(g.incident_records(incident_dir), "when")'),
        md("## Likely culprits (from the what-changed step)"),
        code('''found = sorted(Path(incident_dir).glob("*/culprits.parquet"))
g.load_results(found[-1].parent)[0]["culprits"] if found else "no what-changed step in this incident"'''),
        md("## Convergence"),
        code('''conv = sorted(Path(incident_dir).glob("*/convergence/transitions.parquet"))
g.load_results(conv[-1].parent)[0]["transitions"] if conv else "no convergence was verified in this incident"'''),
    ],
)

write(
    "investigate",
    [
        md(
            "# Incident console\n\nPick a context and an Application, a time and a window; see what changed; pause or "
            "resume self-heal; review a revert (its semantic diff first), confirm it, and watch convergence live. "
            "Every action is also written out as the papermill command that replays it headless (the *replay* box)."
        ),
        params(
            REPO_PARAMS
            + ACT_CLUSTER
            + 'recording = ""  # investigate from a recording store (DIR or s3://bucket/prefix) instead of the live cluster\n'
            + 'output_dir = "console"  # where the console appends the records of its actions (the audit trail)\n'
        ),
        code("""import gitops_nb as g

console = g.IncidentConsole(repo_path=repo_path, kube_context=kube_context, kubeconfig=kubeconfig,
                             argocd_namespace=argocd_namespace, at=at, window=window, output_dir=output_dir,
                             recording=recording)
console"""),
    ],
)
