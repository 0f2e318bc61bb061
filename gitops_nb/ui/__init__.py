"""Layer 5, the user interfaces: the gitops-nb command (cli) and the incident console (widgets)."""
