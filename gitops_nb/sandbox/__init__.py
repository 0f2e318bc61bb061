"""The local sandbox: real Kubernetes and real Argo CD as processes on loopback, built from upstream's
published Go modules, plus the demo deploy-config repo it runs (see docs/sandbox.md)."""

from .control import COMPONENTS, Ports, Sandbox, go_dir, main_progress

__all__ = ["COMPONENTS", "Ports", "Sandbox", "go_dir", "main_progress"]
