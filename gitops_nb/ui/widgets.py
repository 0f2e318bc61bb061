"""The incident console for JupyterLab. Widgets only gather parameters and call the library;
every action is also written out as the papermill command that replays it headless."""

from __future__ import annotations

import html
import shlex
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from ..errors import GitOpsNbError, InputError
from ..investigate.plot import SHA, SUMMARY

if TYPE_CHECKING:
    from ..cluster.evidence import EvidenceSource
    from ..cluster.live import Cluster

__all__ = ["IncidentConsole", "kube_contexts"]

WINDOWS = ("15m", "30m", "1h", "2h", "6h", "1d")


def kube_contexts(kubeconfig: str | None = None) -> list[str]:
    """Context names of a kubeconfig (empty when there is none)."""
    from kubernetes import config

    try:
        return [c["name"] for c in config.list_kube_config_contexts(config_file=kubeconfig or None)[0]]
    except Exception:
        return []


def _papermill(notebook: str, params: dict[str, Any]) -> str:
    args = ["papermill", f"notebooks/{notebook}.ipynb", f"out/{notebook}.ipynb"]
    for k, v in params.items():
        args += ["-p", k, str(v)]
    return shlex.join(args)


def _show(output: Any, *objects: Any) -> None:
    """Replace an Output widget's content (works in a kernel and from plain Python, e.g. tests)."""
    output.outputs = ()
    for obj in objects:
        if isinstance(obj, str):
            output.append_stdout(obj + "\n")
        else:
            output.append_display_data(obj)


class IncidentConsole:
    """Pick a context, an Application, a time and a window; see what changed; act on a change.

    Args mirror the notebooks' parameters. Display it in JupyterLab (it renders itself) or
    drive it from Python: set the widgets' values and call the handlers (``investigate``,
    ``pause``, ``review_revert``, ``confirm_revert``...), as the tests do. With ``output_dir``
    set, every action's record is appended to ``actions.parquet``/``.csv`` there (the audit
    trail that ``incident_records`` and the post-incident report read).
    """

    def __init__(
        self,
        repo_path: str = "",
        kube_context: str = "",
        kubeconfig: str = "",
        argocd_namespace: str = "argocd",
        at: str = "now",
        window: str = "2h",
        output_dir: str = "",
        recording: str = "",
        contexts: str = "",
    ) -> None:
        import ipywidgets as w

        known = kube_contexts(kubeconfig)
        self.repo_path = w.Text(value=repo_path, description="repo")
        self.kubeconfig = w.Text(value=kubeconfig, description="kubeconfig")
        self.context = w.Dropdown(
            options=["", *known], value=kube_context if kube_context in known else "", description="context"
        )
        self.argocd_namespace = w.Text(value=argocd_namespace, description="argocd ns")
        # more contexts (spokes, other hubs) read with the context as one fleet: "What changed?" fans out
        self.contexts = w.Text(value=contexts, description="fleet", placeholder="more contexts, comma-separated")
        self.output_dir = w.Text(value=output_dir, description="audit dir")
        # investigate from a recording store (DIR or s3://...) instead of the live cluster; actions stay live
        self.recording = w.Text(value=recording, description="recording")
        self.app = w.Dropdown(options=[""], value="", description="app")
        self.at = w.Text(value=at, description="T")
        self.window = w.Dropdown(options=list(dict.fromkeys([*WINDOWS, window])), value=window, description="window")
        self.change = w.Dropdown(options=[], description="change")
        self.reason = w.Text(value="", description="reason")
        self.incident = w.Text(value="", description="incident")
        self.load_apps_button = w.Button(description="Load apps")
        self.investigate_button = w.Button(description="What changed?", button_style="primary")
        self.pause_button = w.Button(description="Pause self-heal")
        self.resume_button = w.Button(description="Resume self-heal")
        self.review_button = w.Button(description="Review revert")
        self.rendered = w.Checkbox(value=True, description="rendered", indent=False)  # the review renders too
        self.confirm_button = w.Button(description="Confirm revert", button_style="danger", disabled=True)
        self.cancel_button = w.Button(description="Cancel wait", disabled=True)
        self.status = w.HTML()
        self.table = w.Output()
        self.plot = w.VBox(layout=w.Layout(width="100%"))  # holds the timeline's FigureWidget
        self.monitor = w.Output()
        self.replay = w.Textarea(value="", description="replay", layout=w.Layout(width="100%", height="6em"))
        self.records: list[pd.DataFrame] = []
        self.culprits: pd.DataFrame | None = None
        self.review: pd.DataFrame | None = None
        self.rendered_review: pd.DataFrame | None = None  # the reviewed change's rendered diff
        self.figure: Any = None  # a plotly FigureWidget: clicking a point selects that change
        self.timeline: pd.DataFrame | None = None
        self.transitions: pd.DataFrame | None = None
        self._cancel = threading.Event()
        self.watcher: threading.Thread | None = None  # the live convergence monitor, while it runs
        self._reviewed: str | None = None
        for button, handler in (
            (self.load_apps_button, self.load_apps),
            (self.investigate_button, self.investigate),
            (self.pause_button, self.pause),
            (self.resume_button, self.resume),
            (self.review_button, self.review_revert),
            (self.confirm_button, self.confirm_revert),
            (self.cancel_button, self.cancel),
        ):
            button.on_click(handler)

        def on_change(_change: Any) -> None:
            self._unreview()
            self._highlight()

        self.change.observe(on_change, names="value")
        self.widget = w.VBox(
            [
                w.HBox([self.repo_path, self.kubeconfig, self.output_dir]),
                w.HBox([self.context, self.argocd_namespace, self.recording, self.load_apps_button]),
                self.contexts,
                w.HBox([self.app, self.at, self.window, self.investigate_button]),
                self.status,
                self.plot,
                self.table,
                w.HBox([self.change, self.reason, self.incident]),
                w.HBox(
                    [
                        self.pause_button,
                        self.resume_button,
                        self.review_button,
                        self.rendered,
                        self.confirm_button,
                        self.cancel_button,
                    ]
                ),
                self.monitor,
                self.replay,
            ]
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    # -- plumbing ---------------------------------------------------------------------

    def _say(self, text: str, error: bool = False) -> None:
        color = "#b00020" if error else "#1b5e20"
        self.status.value = f'<span style="color:{color}">{html.escape(text)}</span>'

    def _guard(self, fn: Callable[[], object]) -> bool:
        """Run a handler; errors become a readable line in the console, not a traceback."""
        try:
            fn()
            return True
        except GitOpsNbError as e:
            self._say(f"{type(e).__name__}: {e}", error=True)
            return False

    def _cluster(self) -> Cluster:
        from ..cluster.live import Cluster

        if not self.context.value:
            raise InputError("pick a kube context first (or set kubeconfig and press Load apps)")
        return Cluster(
            self.context.value, kubeconfig=self.kubeconfig.value or None, argocd_namespace=self.argocd_namespace.value
        )

    def _source(self) -> EvidenceSource:
        """Where the evidence is read: the recording store when one is given, else the live cluster."""
        if self.recording.value:
            from ..cluster.recording import Recording

            return Recording(self.recording.value, cluster=self.context.value or None)
        return self._cluster()

    def _cluster_params(self) -> dict[str, Any]:
        return {
            "kube_context": self.context.value,
            "kubeconfig": self.kubeconfig.value,
            "argocd_namespace": self.argocd_namespace.value,
        }

    def _replay(self, notebook: str, params: dict[str, Any]) -> None:
        line = _papermill(notebook, params)
        self.replay.value = (self.replay.value + "\n" + line).strip()

    def _record(self, rec: pd.DataFrame) -> None:
        """Keep an action's record, and append it to the audit trail under ``output_dir`` when one is set."""
        from ..incident.folder import save_records

        self.records.append(rec)
        if self.output_dir.value:
            save_records(self.output_dir.value, [rec])

    def _need_app(self) -> str:
        if not self.app.value:
            raise InputError("pick an Application first (Load apps)")
        return str(self.app.value)

    def _highlight(self) -> None:
        """Mark the selected change's points (its commit and the deploys of it) in the timeline; dim the rest."""
        if self.figure is None:
            return
        with self.figure.batch_update():
            for trace in self.figure.data:
                trace.selectedpoints = [i for i, row in enumerate(trace.customdata) if row[SHA] == self.change.value]

    def _unreview(self) -> None:
        self._reviewed = None
        self.confirm_button.disabled = True

    # -- handlers ---------------------------------------------------------------------

    def load_apps(self, _button: Any = None) -> None:
        """Fill the context list from the kubeconfig and the app list from the cluster's Applications."""

        def run() -> None:
            contexts = kube_contexts(self.kubeconfig.value or None)
            self.context.options = ["", *contexts]
            if not self.context.value and contexts:
                self.context.value = contexts[0]
            names = sorted(self._source().applications()["name"])
            self.app.options = ["", *names]
            self._say(f"{len(names)} Applications in context {self.context.value}")

        self._guard(run)

    def investigate(self, _button: Any = None) -> None:
        """What changed at T: the table of likely culprits, the timeline, and the changes to pick from."""
        from ..investigate.plot import plot_timeline
        from ..investigate.timeline import investigate
        from ..times import describe_time, with_local_time

        def run() -> None:
            inv = investigate(
                self.repo_path.value,
                self.at.value,
                self.window.value,
                [self.app.value] if self.app.value else None,
                kube_context=self.context.value or None,
                kubeconfig=self.kubeconfig.value or None,
                argocd_namespace=self.argocd_namespace.value,
                recording=self.recording.value or None,
                contexts=self.contexts.value or None,
            )
            self.timeline = inv.timeline
            git_rows = inv.rows("git")
            self.change.options = [
                (f"{s[:10]} {m}", s) for s, m in zip(git_rows["sha"], git_rows["summary"], strict=True)
            ]
            top = inv.culprits
            if len(top) and top["sha"].iloc[0] in set(git_rows["sha"]):
                self.change.value = top["sha"].iloc[0]
            self.culprits = top
            self.figure = plot_timeline(inv.timeline, inv.at, widget=True)
            self.figure.update_layout(width=1000, legend={"orientation": "h", "y": -0.25})
            for trace in self.figure.data:
                trace.on_click(self.select_point)
                trace.unselected = {"marker": {"opacity": 0.35}}
            self._highlight()
            _show(self.table, with_local_time(top[["rank", "time", "summary", "app", "why"]]))
            self.plot.children = (self.figure,)
            unread = inv.timeline.attrs.get("failures") or []
            partial = (
                "; could not read " + ", ".join(f"{f['cluster']} ({f['error']})" for f in unread) + ": rows are partial"
                if unread
                else ""
            )
            self._say(
                f"{len(inv.timeline)} rows around T = {describe_time(inv.at)}; {len(top)} likely culprits{partial}",
                error=bool(unread),
            )
            self._replay(
                "what_changed",
                {
                    "repo_path": self.repo_path.value,
                    "at": inv.at.isoformat(),
                    "window": self.window.value,
                    "apps": self.app.value or "",
                    **self._cluster_params(),
                    "contexts": self.contexts.value,
                },
            )

        self._guard(run)

    def select_point(self, trace: Any, points: Any, _state: Any = None) -> None:
        """Timeline click: select the clicked point's change (a commit, or the revision a deploy shipped)."""

        def run() -> None:
            if not points.point_inds:  # plotly calls every trace's handler; only the clicked one has points
                return
            point = trace.customdata[points.point_inds[0]]
            sha, summary = point[SHA], point[SUMMARY]
            if sha not in {v for _, v in self.change.options}:
                raise InputError(
                    f"the clicked {trace.name} point ({summary}) is not a commit in this window; "
                    "click a git point or a deploy of one"
                )
            self.change.value = sha
            self._say(f"selected {sha[:10]} {summary} from the timeline; Review revert shows what undoing it does")

        self._guard(run)

    def _pause_or_resume(self, action: str) -> None:
        from ..act.selfheal import pause_self_heal, resume_self_heal

        def run() -> None:
            app = self._need_app()
            cluster = self._cluster()
            if action == "pause":
                rec = pause_self_heal(cluster, app, self.reason.value or "incident console", dry_run=False)
            else:
                rec = resume_self_heal(cluster, app, dry_run=False)
            self._record(rec)
            note = rec["note"].iloc[0] or ""
            self._say(f"{action} {app}: {'done' if rec['changed'].iloc[0] else 'nothing to do'}. {note}")
            self._replay(
                "pause_self_heal",
                {"app": app, "action": action, "reason": self.reason.value, "confirm": True, **self._cluster_params()},
            )

        self._guard(run)

    def pause(self, _button: Any = None) -> None:
        """Pause self-heal on the selected Application (keeps the exact sync policy)."""
        self._pause_or_resume("pause")

    def resume(self, _button: Any = None) -> None:
        """Restore the Application's exact sync policy."""
        self._pause_or_resume("resume")

    def _rendered_diff(self, repo: Any, sha: str) -> pd.DataFrame | str:
        """The change's rendered diff for the chosen Application (its live spec), or for every app the
        commit reaches without one; a failure is one line (render failures are rows already)."""
        from ..investigate.render import rendered_diff

        try:
            app = self._cluster().raw_application(self.app.value) if self.app.value and self.context.value else None
            return rendered_diff(repo, sha, app)
        except GitOpsNbError as e:
            return f"rendered diff: {type(e).__name__}: {e}"

    def review_revert(self, _button: Any = None) -> None:
        """Show what reverting the selected change would undo (its semantic diff, and with *rendered* the
        diff of the manifests Argo CD renders: :func:`~gitops_nb.rendered_diff`) and enable Confirm."""
        from ..act.revert import revert
        from ..git.repo import DeployRepo

        def run() -> None:
            if not self.change.value:
                raise InputError("pick a change to revert (What changed? fills the list)")
            repo = DeployRepo(self.repo_path.value)
            sha = repo.resolve(self.change.value)
            diff = repo.manifest_changes(rev=sha)
            diff = diff[diff["sha"] == sha][["path", "kind", "name", "field", "old", "new"]]
            plan = revert(repo, sha, incident=self.incident.value or None, dry_run=True)
            self.review = diff
            shown: list[Any] = [f"Reverting {sha[:10]} undoes these changes (new -> old); {plan['note'].iloc[0]}", diff]
            self.rendered_review = None
            if self.rendered.value:
                rendered = self._rendered_diff(repo, sha)
                if isinstance(rendered, pd.DataFrame):
                    self.rendered_review = rendered
                    cols = ["app", "kind", "name", "field", "old", "new", "change", "error"]
                    shown += [f"What {sha[:10]} changed in the rendered manifests:", rendered[cols]]
                else:
                    shown.append(rendered)
            _show(self.monitor, *shown)
            self._reviewed = sha
            self.confirm_button.disabled = False
            self._say(f"review {sha[:10]}: {len(diff)} field changes would be undone; press Confirm revert to act")

        self._guard(run)

    def confirm_revert(self, _button: Any = None, *, background: bool = True) -> None:
        """Revert the reviewed change, push, refresh, and watch convergence live (cancellable).

        The steps are :func:`gitops_nb.rollback`'s (without the pause: the console has its own buttons).
        """

        def run() -> None:
            if self.watcher is not None and self.watcher.is_alive():
                raise InputError("a convergence watch is still running: wait for it or press Cancel wait first")
            if not self._reviewed or self._reviewed != self.change.value:
                raise InputError("review the revert first (Review revert), then confirm")
            app = self._need_app()
            cluster = self._cluster()
            sha = self._reviewed
            self._replay(
                "revert_and_verify",
                {
                    "repo_path": self.repo_path.value,
                    "sha": sha,
                    "app": app,
                    "incident": self.incident.value,
                    "pause": False,
                    "confirm": True,
                    **self._cluster_params(),
                },
            )
            self._unreview()
            self._say(f"reverting {sha[:10]} and watching {app} converge...")
            self._cancel.clear()
            if background:
                self.watcher = threading.Thread(target=self._rollback, args=(cluster, app, sha), daemon=True)
                self.watcher.start()
            else:
                self._rollback(cluster, app, sha)

        self._guard(run)

    def _rollback(self, cluster: Cluster, app: str, sha: str) -> None:
        from ..act.rollback import rollback

        self.cancel_button.disabled = False

        def progress(line: str) -> None:
            self.monitor.append_stdout(line + "\n")

        try:
            done = rollback(
                self.repo_path.value,
                cluster,
                sha,
                app,
                incident=self.incident.value or None,
                pause=False,
                timeout="10m",
                dry_run=False,
                progress=progress,
                cancel=self._cancel,
                on_record=self._record,
            )
            self.transitions = done.transitions
            self._say(f"{app} converged at {str(done.revert_sha)[:10]}: Synced, Healthy, rollout complete")
        except GitOpsNbError as e:
            self._say(f"{type(e).__name__}: {e}", error=True)
        finally:
            self.cancel_button.disabled = True

    def cancel(self, _button: Any = None) -> None:
        """Stop watching convergence (the revert stays pushed; nothing is undone)."""
        self._cancel.set()
