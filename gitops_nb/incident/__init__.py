"""Layer 4, the incident: runbooks, the incident folder and its audit trail, shipped notebooks."""
