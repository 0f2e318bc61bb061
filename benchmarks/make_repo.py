"""Generate a large synthetic deploy-config repository with ``git fast-import``.

Layout: ``apps/svc-NN/base`` and ``apps/svc-NN/overlays/{staging,production}``. Commits
are 5 minutes apart and mix CI tag bumps (most), replica and memory changes, and
base changes, like a busy deploy-config repo. Deterministic for a given seed.

    python benchmarks/make_repo.py PATH --commits 100000
"""

from __future__ import annotations

import argparse
import base64
import random
import subprocess
import sys
import time
from pathlib import Path

START = 1_700_000_000  # 2023-11-14T22:13:20Z
STEP = 300  # seconds between commits


def _overlay(svc: str, env: str, tag: str, replicas: int) -> str:
    return (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"namespace: {svc}-{env}\nresources:\n- ../../base\n"
        f"replicas:\n- name: {svc}\n  count: {replicas}\n"
        f'images:\n- name: ghcr.io/acme/{svc}\n  newTag: "{tag}"\n'
    )


def _deployment(svc: str, memory: int) -> str:
    return (
        f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {svc}\nspec:\n  replicas: 2\n"
        f"  selector:\n    matchLabels: {{app: {svc}}}\n  template:\n    metadata:\n      labels: {{app: {svc}}}\n"
        f"    spec:\n      containers:\n      - name: {svc}\n        image: ghcr.io/acme/{svc}:latest\n"
        f"        resources:\n          limits: {{memory: {memory}Mi}}\n"
    )


def _base_kust() -> str:
    return "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\n"


def _planted(n: int, rng: random.Random, svc: str) -> tuple[str, dict[str, str | None]]:
    """A plaintext secret committed at commit ``n`` (for the secrets audit's benchmark), in one of five forms;
    the sixth form removes an earlier one. Values are random, fixed by the seed."""
    value = "".join(rng.choice("abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(24))
    form = (n // 997) % 6
    if form == 0:
        text = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db-{n}\nstringData:\n  password: {value}\n"
        return f"{svc}: db secret (oops)", {f"apps/{svc}/base/secret-{n}.yaml": text}
    if form == 1:
        b64 = base64.b64encode(value.encode()).decode()
        text = f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: api-{n}\ndata:\n  token: {b64}\n"
        return f"{svc}: api secret", {f"apps/{svc}/base/api-{n}.yaml": text}
    if form == 2:
        return f"{svc}: chart values", {f"charts/{svc}/values.yaml": f"image:\n  tag: {n}\ndb:\n  password: {value}\n"}
    if form == 3:
        key = "AKIA" + "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") for _ in range(16))
        return f"{svc}: bootstrap script", {f"scripts/{svc}-bootstrap.sh": f"export AWS_ACCESS_KEY_ID={key}\n"}
    if form == 4:
        lit = f"secretGenerator:\n- name: {svc}-gen\n  literals:\n  - API_KEY={value}\n"
        return f"{svc}: generated secret", {f"apps/{svc}/gen/kustomization.yaml": lit}
    return f"{svc}: remove the bootstrap script", {f"scripts/{svc}-bootstrap.sh": None}


def generate(path: Path, commits: int, services: int = 40, seed: int = 7, secrets_every: int = 0) -> Path:
    """Create the repository at ``path`` (must not exist); returns the path.

    With ``secrets_every``, every that many commits also plants a plaintext secret (or removes one):
    the history is otherwise the same as without it."""
    rng = random.Random(seed)
    secret_rng = random.Random(seed + 1)
    path.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(path)], check=True)
    proc = subprocess.Popen(["git", "fast-import", "--quiet", "--done"], cwd=path, stdin=subprocess.PIPE)
    assert proc.stdin is not None
    out = proc.stdin
    state = {}
    for i in range(services):
        svc = f"svc-{i:02d}"
        for env in ("staging", "production"):
            state[(svc, env)] = [f"1.0.{i}", 2 if env == "staging" else 4]
        state[(svc, "memory")] = [256]

    def data(text: str) -> bytes:
        b = text.encode()
        return b"data %d\n" % len(b) + b + b"\n"

    for n in range(commits):
        t = START + n * STEP
        files: dict[str, str | None] = {}
        svc = f"svc-{rng.randrange(services):02d}"
        if n == 0:
            msg = "Initial layout"
            who = "Alice Ops <alice@example.com>"
            for i in range(services):
                s = f"svc-{i:02d}"
                files[f"apps/{s}/base/kustomization.yaml"] = _base_kust()
                files[f"apps/{s}/base/deployment.yaml"] = _deployment(s, state[(s, "memory")][0])
                for env in ("staging", "production"):
                    files[f"apps/{s}/overlays/{env}/kustomization.yaml"] = _overlay(s, env, *state[(s, env)])
        else:
            r = rng.random()
            env = "production" if rng.random() < 0.5 else "staging"
            if r < 0.8:
                tag = f"{n // 1000}.{n % 1000}.{rng.randrange(100)}-{rng.getrandbits(28):07x}"
                state[(svc, env)][0] = tag
                msg, who = f"deploy({svc}/{env}): {tag}", "deploy-bot <deploy-bot@example.com>"
                files[f"apps/{svc}/overlays/{env}/kustomization.yaml"] = _overlay(svc, env, *state[(svc, env)])
            elif r < 0.92:
                state[(svc, env)][1] = rng.randrange(1, 12)
                msg, who = f"{svc} {env}: {state[(svc, env)][1]} replicas", "Bob Dev <bob@example.com>"
                files[f"apps/{svc}/overlays/{env}/kustomization.yaml"] = _overlay(svc, env, *state[(svc, env)])
            else:
                state[(svc, "memory")][0] = rng.choice([256, 384, 512, 640, 768])
                msg, who = f"{svc} base: memory {state[(svc, 'memory')][0]}Mi", "Alice Ops <alice@example.com>"
                files[f"apps/{svc}/base/deployment.yaml"] = _deployment(svc, state[(svc, "memory")][0])
        if secrets_every and n and n % secrets_every == 0:
            extra_msg, extra = _planted(n, secret_rng, svc)
            files = {**files, **extra}
            msg = f"{msg}; {extra_msg}"
        out.write(b"commit refs/heads/main\n")
        out.write(f"author {who} {t} +0000\ncommitter {who} {t} +0000\n".encode())
        out.write(data(msg))
        for p, text in files.items():
            if text is None:
                out.write(f"D {p}\n".encode())
                continue
            out.write(f"M 100644 inline {p}\n".encode())
            out.write(data(text))
    out.write(b"done\n")
    out.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")
    subprocess.run(["git", "reset", "-q", "--hard"], cwd=path, check=True)
    # what `git gc` does by default on a real clone: a commit-graph speeds up every walk
    subprocess.run(["git", "commit-graph", "write", "--reachable"], cwd=path, check=True, capture_output=True)
    return path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("path", type=Path)
    p.add_argument("--commits", type=int, default=100_000)
    p.add_argument("--services", type=int, default=40)
    p.add_argument("--secrets-every", type=int, default=0, help="plant a plaintext secret every N commits")
    a = p.parse_args()
    t = time.perf_counter()
    generate(a.path, a.commits, a.services, secrets_every=a.secrets_every)
    print(f"{a.commits} commits in {a.path} ({time.perf_counter() - t:.1f}s)", file=sys.stderr)


if __name__ == "__main__":
    main()
