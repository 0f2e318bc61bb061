"""Layer 1, the cluster: the live Kubernetes + Argo CD reads and Application verbs (live, argocd), the
EvidenceSource contract (evidence) and saved evidence (snapshot)."""

from .evidence import EvidenceSource
from .live import Cluster
from .snapshot import Snapshot, snapshot

__all__ = ["Cluster", "EvidenceSource", "Snapshot", "snapshot"]
