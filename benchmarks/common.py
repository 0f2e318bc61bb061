"""Shared pieces of the benchmarks: timing, and the one-Deployment app the sandbox benchmarks deploy."""

from __future__ import annotations

import time
from collections.abc import Callable


def best(fn: Callable[[], object], repeat: int) -> float:
    """The fastest of ``repeat`` runs of ``fn``, in seconds."""
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def web_app(tag: object, replicas: int = 2) -> dict[str, str]:
    """Files of a one-Deployment Kustomize app under ``app/`` with image tag ``tag``."""
    return {
        "app/kustomization.yaml": f'resources:\n- deployment.yaml\nimages:\n- name: ghcr.io/acme/web\n  newTag: "{tag}"\n',
        "app/deployment.yaml": (
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n"
            f"  replicas: {replicas}\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n"
            "    metadata: {labels: {app: web}}\n"
            '    spec: {containers: [{name: web, image: "ghcr.io/acme/web:latest"}]}\n'
        ),
    }
