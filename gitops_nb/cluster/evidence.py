"""The contract every source of cluster evidence meets: a live :class:`~gitops_nb.cluster.live.Cluster`,
a saved :class:`~gitops_nb.cluster.snapshot.Snapshot` and a :class:`~gitops_nb.cluster.recording.Recording`.

Investigations, drift and reports take any :class:`EvidenceSource`; they never ask which one it is,
except through :attr:`EvidenceSource.live` (a live source is worth snapshotting, a snapshot is not).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from datetime import datetime

    import pandas as pd

__all__ = ["PER_NAMESPACE_LIMIT", "EditHistory", "EvidenceSource"]

#: above this many namespaces, one cluster-wide list per kind beats one list per namespace
PER_NAMESPACE_LIMIT = 8


@runtime_checkable
class EvidenceSource(Protocol):
    """Frames of Argo CD and Kubernetes evidence, each with its schema from :mod:`gitops_nb.schema`."""

    # read-only members, so a source may narrow them (a live Cluster's context is always a str)
    @property
    def context(self) -> str | None:
        """The kube context the evidence is (or was) read from."""
        ...

    @property
    def argocd_namespace(self) -> str:
        """Where the Application objects live."""
        ...

    @property
    def live(self) -> bool:
        """True for a live cluster (its evidence fades: events expire, Argo CD keeps 10 deploys)."""
        ...

    def applications(self) -> pd.DataFrame:
        """One row per Application (:data:`schema.APPLICATIONS`)."""
        ...

    def history(self) -> pd.DataFrame:
        """Every Application's deploys (:data:`schema.APP_HISTORY`)."""
        ...

    def operations(self) -> pd.DataFrame:
        """Each Application's current or last operation (:data:`schema.OPERATIONS`)."""
        ...

    def argocd_frames(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """Applications, history and operations together (a live cluster reads them in one list)."""
        ...

    def app_history(self, app: str) -> pd.DataFrame:
        """The deploys of one Application (:data:`schema.APP_HISTORY`)."""
        ...

    def app_resources(self, app: str) -> pd.DataFrame:
        """The resources one Application manages (:data:`schema.APP_RESOURCES`)."""
        ...

    def events(
        self,
        namespace: str | None = None,
        since: str | datetime | pd.Timestamp | None = None,
        until: str | datetime | pd.Timestamp | None = None,
    ) -> pd.DataFrame:
        """Kubernetes and Argo CD events (:data:`schema.EVENTS`), oldest first."""
        ...

    def rollouts(self, namespace: str | None, name: str | None = None) -> pd.DataFrame:
        """Deployments' ReplicaSets (:data:`schema.ROLLOUTS`)."""
        ...

    def field_edits(self, namespace: str | None, kinds: Sequence[str] | None = None) -> pd.DataFrame:
        """Who set which fields, when, from managedFields (:data:`schema.FIELD_EDITS`)."""
        ...


@runtime_checkable
class EditHistory(Protocol):
    """A source that keeps every field change (a :class:`~gitops_nb.cluster.recording.Recording`) and can read
    the field edits of a few named objects without reading everyone's: what a deploy reset, however long
    before the window it had been set."""

    def recorded_edits(self, objects: Iterable[tuple[str, str, str]]) -> pd.DataFrame:
        """The rows of :meth:`EvidenceSource.field_edits` with recorded ``changes`` of the ``(namespace, kind,
        name)`` objects, in its order (:data:`schema.FIELD_EDITS`), read for those objects alone."""
        ...
