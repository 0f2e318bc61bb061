"""Layer 1, the cluster: the live Kubernetes + Argo CD reads and Application verbs (live, argocd), the
EvidenceSource contract (evidence), saved evidence (snapshot) and the recording store (store)."""

from .evidence import EvidenceSource
from .live import Cluster
from .recording import Recording
from .snapshot import Snapshot, snapshot
from .store import Store, StoreWriter

__all__ = ["Cluster", "EvidenceSource", "Recording", "Snapshot", "Store", "StoreWriter", "snapshot"]
