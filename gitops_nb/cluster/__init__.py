"""Layer 1, the cluster: the live Kubernetes + Argo CD reads and Application verbs (live, argocd), the
EvidenceSource contract (evidence) and saved evidence (snapshot)."""
