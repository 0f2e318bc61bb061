"""Layer 1, the repository: history reads (repo), the semantic YAML diff (manifests), Kustomize roots
(kustomize), git processes (gitio), and the write side for reverts (write)."""
