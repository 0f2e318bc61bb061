"""Write the notebooks in notebooks/ (outputs stripped). The notebooks are the source of truth once
written; this script keeps their shape consistent: title, one parameters cell, thin library calls.

    .venv/bin/python tools/make_notebooks.py
"""

from __future__ import annotations

from pathlib import Path

import nbformat as nbf

OUT = Path(__file__).resolve().parent.parent / "notebooks"
md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell


def params(text: str) -> nbf.NotebookNode:
    cell = code("\n".join(line for line in text.strip().splitlines() if line.strip()))
    cell.metadata["tags"] = ["parameters"]
    return cell


def write(name: str, cells: list[nbf.NotebookNode]) -> None:
    nb = nbf.v4.new_notebook()
    nb.cells = cells
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nbf.write(nb, OUT / f"{name}.ipynb")


CLUSTER_PARAMS = """
kube_context = ""  # kubeconfig context for the cluster side; empty means git only
kubeconfig = ""  # kubeconfig file; empty means KUBECONFIG or ~/.kube/config
argocd_namespace = "argocd"  # namespace of Argo CD's Applications
snapshot_dir = ""  # read the cluster side from a saved snapshot instead of a live cluster
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
            """
repo_path = "."  # local clone of the deploy-config repo
at = "now"  # incident time T: ISO-8601 with zone, now, or relative like -30m
window = "2h"  # how far before T to look
apps = ""  # comma-separated apps to keep: Argo CD app names, Kustomize roots or parts like checkout-api; empty means all
"""
            + CLUSTER_PARAMS
            + """
output_dir = "results"  # where the machine-readable results are written
"""
        ),
        code("""import gitops_nb as g

inv = g.investigate(repo_path, at, window, [a for a in apps.split(",") if a] or None,
                    kube_context=kube_context or None, kubeconfig=kubeconfig or None,
                    argocd_namespace=argocd_namespace, snapshot_dir=snapshot_dir or None)
print(f"T = {g.describe_time(inv.at)}; window {inv.window} before T; repo {inv.repo.path}; cluster: {inv.cluster}")"""),
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
        code("print(inv.save(output_dir))\ninv.summary()"),
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
kubeconfig = ""  # kubeconfig file; empty means KUBECONFIG or ~/.kube/config
argocd_namespace = "argocd"  # namespace of Argo CD's Applications
since = ""  # only field edits since this time, ISO-8601 or relative like -24h; empty means all
output_dir = "drift"  # where the machine-readable results are written
"""),
        code("""import gitops_nb as g

cluster = g.Cluster(kube_context or None, kubeconfig=kubeconfig or None, argocd_namespace=argocd_namespace)
apps = cluster.applications()
apps[["name", "sync_status", "health_status", "sync_revision", "automated", "self_heal", "reconciled_at"]]"""),
        md("## Out of sync now"),
        code("out_of_sync = g.drift(cluster)\nout_of_sync"),
        md("## Changes made outside git"),
        code(
            'edits = g.manual_edits(cluster, since=since or None)\ng.with_local_time(edits, "time")[["time", "time_local", "apps", "kind", "name", "manager", "operation", "fields"]]'
        ),
        md("## Saved results"),
        code(
            'print(g.save_results(output_dir, {"applications": apps, "drift": out_of_sync, "manual_edits": edits}, '
            '{"context": cluster.context}))'
        ),
    ],
)
