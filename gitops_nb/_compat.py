"""Deprecated module paths of 0.1, kept for one release.

0.2 cut the package into layers (docs/architecture.md); ``import gitops_nb.widgets`` and the like
still work, with a :class:`DeprecationWarning` naming the new path. Public names are unchanged
in ``gitops_nb`` itself: import them from there.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from types import ModuleType

__all__ = ["MOVED", "install"]

#: old module path -> new module path
MOVED = {
    "gitops_nb.actions": "gitops_nb.act",
    "gitops_nb.argocd": "gitops_nb.cluster.argocd",
    "gitops_nb.cli": "gitops_nb.ui.cli",
    "gitops_nb.demo": "gitops_nb.sandbox.demo",
    "gitops_nb.drift": "gitops_nb.investigate.drift",
    "gitops_nb.evidence": "gitops_nb.cluster.snapshot",
    "gitops_nb.gitio": "gitops_nb.git.gitio",
    "gitops_nb.history": "gitops_nb.git.repo",
    "gitops_nb.kustomize": "gitops_nb.git.kustomize",
    "gitops_nb.manifests": "gitops_nb.git.manifests",
    "gitops_nb.plot": "gitops_nb.investigate.plot",
    "gitops_nb.report": "gitops_nb.results",
    "gitops_nb.runbook": "gitops_nb.incident.runbook",
    "gitops_nb.timeline": "gitops_nb.investigate.timeline",
    "gitops_nb.widgets": "gitops_nb.ui.widgets",
}


#: names an old module had that now live elsewhere: old module -> {name: (new module, attribute)}
EXTRA = {
    "gitops_nb.actions": {
        "RECORD_COLUMNS": ("gitops_nb.schema", "ACTION_RECORDS"),
        "TRANSITION_COLUMNS": ("gitops_nb.schema", "TRANSITIONS"),
    },
    "gitops_nb.cli": {
        "notebooks_dir": ("gitops_nb.incident.notebooks", "notebooks_dir"),
        "run_notebook": ("gitops_nb.incident.notebooks", "run_notebook"),
    },
    "gitops_nb.runbook": {
        "runbooks_dir": ("gitops_nb.incident.notebooks", "runbooks_dir"),
        "incident_records": ("gitops_nb.incident.folder", "incident_records"),
        "incident_summary": ("gitops_nb.incident.folder", "incident_summary"),
        "save_records": ("gitops_nb.incident.folder", "save_records"),
    },
    "gitops_nb.timeline": {"TimelineSource": ("gitops_nb.cluster.evidence", "EvidenceSource")},
    "gitops_nb.evidence": {"Evidence": ("gitops_nb.cluster.evidence", "EvidenceSource")},
}
_AS_LIST = {"RECORD_COLUMNS", "TRANSITION_COLUMNS"}  # were lists of column names; now schemas


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType | None:
        return None  # a plain module, filled in below

    def exec_module(self, module: ModuleType) -> None:
        new = MOVED[module.__name__]
        warnings.warn(
            f"{module.__name__} moved to {new} (0.2); import public names from gitops_nb. The old path goes in 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        real = importlib.import_module(new)
        module.__dict__.update({k: v for k, v in real.__dict__.items() if not k.startswith("__")})
        setattr(module, "__all__", list(getattr(real, "__all__", [])))  # noqa: B010 - a plain module object
        for name, (where, attr) in EXTRA.get(module.__name__, {}).items():
            value = getattr(importlib.import_module(where), attr)
            setattr(module, name, list(value) if name in _AS_LIST else value)


def install() -> None:
    """Make the old module paths importable (idempotent)."""
    if not any(isinstance(f, _Alias) for f in sys.meta_path):
        sys.meta_path.append(_Alias())
