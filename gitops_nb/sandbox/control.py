"""The local sandbox: a real Kubernetes control plane and real Argo CD on loopback.

Components run as local processes (no containers): redis, etcd, kube-apiserver,
kube-controller-manager, kube-scheduler, kwok (fake nodes, so Pods "run"), and
Argo CD's repo-server, application-controller and applicationset-controller. Binaries come from
``sandbox/build.sh`` (built from upstream's published Go modules, cached under
``$GITOPS_NB_CACHE``); runtime state (pid files, logs, certificates, kubeconfig,
etcd data) lives under ``$GITOPS_NB_STATE`` (default ``~/.cache/gitops-nb/run``).

The admin token and keys are written with mode 0600 and never printed or logged.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import queue
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import SandboxBuildError, SandboxError, SandboxStartError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "COLD_BUILD_SECONDS",
    "COMPONENTS",
    "MAX_SPOKES",
    "SPOKE_COMPONENTS",
    "BuildProgress",
    "Sandbox",
    "default_cache",
    "default_state",
    "stream_build",
]

ARGOCD_NS = "argocd"
FAKE_NODE_ANNOTATION = "kwok.x-k8s.io/node"
PART_OF = {"app.kubernetes.io/part-of": "argocd"}
#: start order; ``down`` stops in reverse
COMPONENTS = (
    "redis",
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
    "argocd-repo-server",
    "argocd-application-controller",
    "argocd-applicationset-controller",
)

#: a spoke's components, in start order: a control plane and fake nodes, no Argo CD (the hub's deploys to it)
SPOKE_COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
#: spokes a sandbox may have (their ports: base+2400..base+2499, 20 per spoke)
MAX_SPOKES = 4
#: the label that makes a Secret in Argo CD's namespace a cluster Argo CD deploys to
CLUSTER_SECRET_LABEL = {"argocd.argoproj.io/secret-type": "cluster"}


#: processes this Python process started, kept referenced so they are never garbage-collected while running
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


def default_cache() -> Path:
    """Where builds are cached (``$GITOPS_NB_CACHE``, default ``~/.cache/gitops-nb``)."""
    return Path(os.environ.get("GITOPS_NB_CACHE", Path.home() / ".cache" / "gitops-nb"))


def default_state() -> Path:
    """Where the running sandbox keeps its state (``$GITOPS_NB_STATE``, default ``<cache>/run``)."""
    return Path(os.environ.get("GITOPS_NB_STATE", default_cache() / "run"))


def go_dir() -> Path:
    """The sandbox's build inputs (``build.sh``, our Go modules ``k8s/`` and ``argocd/``), shipped in the package."""
    return Path(__file__).resolve().parent / "go"


@dataclass(frozen=True)
class Ports:
    """Loopback ports, all offset from one base (``$GITOPS_NB_SANDBOX_PORT_BASE``, default 16000)."""

    base: int = field(default_factory=lambda: int(os.environ.get("GITOPS_NB_SANDBOX_PORT_BASE", "16000")))

    @property
    def redis(self) -> int:
        return self.base + 379

    @property
    def etcd(self) -> int:
        return self.base + 2379

    @property
    def etcd_peer(self) -> int:
        return self.base + 2380

    @property
    def apiserver(self) -> int:
        return self.base + 443

    @property
    def controller_manager(self) -> int:
        return self.base + 257

    @property
    def scheduler(self) -> int:
        return self.base + 259

    @property
    def kwok(self) -> int:
        return self.base + 247

    @property
    def repo_server(self) -> int:
        return self.base + 81

    @property
    def repo_server_metrics(self) -> int:
        return self.base + 84

    @property
    def controller_metrics(self) -> int:
        return self.base + 82

    @property
    def appset_probe(self) -> int:
        return self.base + 86

    @property
    def appset_metrics(self) -> int:
        return self.base + 85

    @property
    def appset_webhook(self) -> int:
        return self.base + 70

    def spoke(self, i: int) -> SpokePorts:
        """The ports of spoke ``i`` (1-based): ``base+2400+20*(i-1)`` onwards."""
        if not 1 <= i <= MAX_SPOKES:
            raise SandboxError(f"spoke {i}: a sandbox has spokes 1..{MAX_SPOKES}")
        return SpokePorts(self.base + 2400 + 20 * (i - 1))

    def of(self, component: str) -> int:
        """The port a component listens on (the one its readiness is checked on); ``spoke-2:kwok`` for a spoke's."""
        i, base = split_component(component)
        if i is not None:
            return self.spoke(i).of(base)
        return {
            "redis": self.redis,
            "etcd": self.etcd,
            "kube-apiserver": self.apiserver,
            "kube-controller-manager": self.controller_manager,
            "kube-scheduler": self.scheduler,
            "kwok": self.kwok,
            "argocd-repo-server": self.repo_server,
            "argocd-application-controller": self.controller_metrics,
            "argocd-applicationset-controller": self.appset_metrics,
        }[component]


@dataclass(frozen=True)
class SpokePorts:
    """One spoke's loopback ports, from its own base (see :meth:`Ports.spoke`)."""

    base: int

    @property
    def apiserver(self) -> int:
        return self.base

    @property
    def etcd(self) -> int:
        return self.base + 1

    @property
    def etcd_peer(self) -> int:
        return self.base + 2

    @property
    def controller_manager(self) -> int:
        return self.base + 3

    @property
    def scheduler(self) -> int:
        return self.base + 4

    @property
    def kwok(self) -> int:
        return self.base + 5

    def of(self, component: str) -> int:
        return {
            "etcd": self.etcd,
            "kube-apiserver": self.apiserver,
            "kube-controller-manager": self.controller_manager,
            "kube-scheduler": self.scheduler,
            "kwok": self.kwok,
        }[component]


@dataclass(frozen=True)
class _Plane:
    """One control plane's own parts: the hub's or a spoke's (see :meth:`Sandbox._plane_command`)."""

    name: str  # the etcd member's name
    ports: Ports | SpokePorts
    state: Path  # holds secrets/token.csv
    etcd: Path  # etcd's data dir
    pki: Path  # the service-account key pair (sa.key, sa.pub); the cert dir
    kubeconfig: str  # what its controllers and kwok connect with
    issuer: str  # the service-account issuer's host


def spoke_component(i: int, component: str) -> str:
    """The name of spoke ``i``'s ``component`` (``spoke-2:kwok``): its pid file, log and :meth:`Sandbox.restart` name."""
    return f"spoke-{i}:{component}"


def split_component(c: str) -> tuple[int | None, str]:
    """``spoke-2:kwok`` -> ``(2, "kwok")``; a hub component -> ``(None, c)``."""
    m = re.fullmatch(r"spoke-(\d+):([\w-]+)", c)
    if m is None:
        return None, c
    if m[2] not in SPOKE_COMPONENTS:
        raise SandboxError(f"unknown spoke component {m[2]!r}: one of {', '.join(SPOKE_COMPONENTS)}")
    return int(m[1]), m[2]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _pid_cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None


def _wait(check: Callable[[], bool], timeout: float, what: str, log: Path | None = None, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(interval)
    tail = ""
    if log and log.exists():
        lines = log.read_text(errors="replace").splitlines()[-15:]
        tail = "\n  last log lines:\n    " + "\n    ".join(lines)
    raise SandboxStartError(f"{what} was not ready after {timeout:.0f}s; see {log}{tail}")


#: seconds each step of a cold build takes on 2 cores (docs/sandbox.md, "Measured figures"): the heartbeat's yardstick
COLD_BUILD_SECONDS = {
    "module downloads": 16,
    "etcd": 36,
    "kube-apiserver": 150,
    "kube-controller-manager": 52,
    "kube-scheduler": 4,
    "argocd": 170,  # with the ApplicationSet controller
    "kwok": 91,
    "kustomize": 10,
    "helm": 360,  # its own k8s.io v0.33 libraries: 526 s measured under a load of 8 on 2 cores
}
#: seconds between two heartbeats while a component compiles and build.sh is silent
HEARTBEAT_SECONDS = 15.0

_BUILD_LINE = re.compile(r"^\[sandbox\s+\d+s\] (?P<msg>.*)$")
_STEP_START = re.compile(r"^(?P<name>[\w.-]+): building$")
_STEP_END = re.compile(r"^(?:[\w.-]+: (?:done in|already built)|modules downloaded)")


def _duration(seconds: float) -> str:
    """``75`` -> ``1m15s``; ``40`` -> ``40s``."""
    s = round(seconds)
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def heartbeat_line(component: str, on_it: float, elapsed: float) -> str:
    """The heartbeat while ``component`` has compiled ``on_it`` seconds, ``elapsed`` into the build."""
    total = sum(COLD_BUILD_SECONDS.values())
    own = COLD_BUILD_SECONDS.get(component)
    yardstick = f"~{_duration(own)} for it, " if own else ""
    return (
        f"[sandbox {elapsed:4.0f}s] still building {component} ({_duration(on_it)} so far); "
        f"a cold build takes {yardstick}about {math.ceil(total / 60)} min in all on 2 cores"
    )


class BuildProgress:
    """What a person sees of a build: build.sh's stderr lines, heartbeats, and one line when cached.

    Lines before build.sh has said whether it builds are held back: a cached run shows only its
    "up to date" line; otherwise they are shown once it starts building (or installing, or fails).
    """

    def __init__(self, say: Callable[[str], None], *, start: float, heartbeat: float = HEARTBEAT_SECONDS) -> None:
        self.say = say
        self.start = start
        self.heartbeat = heartbeat
        self.component: str | None = None  # the step compiling now
        self.since = start  # when it began
        self.last = start  # when something was last said
        self.tail: deque[str] = deque(maxlen=30)  # for the error message of a quiet failed build
        self._held: list[str] | None = []  # None once decided

    def _emit(self, text: str, now: float) -> None:
        self.say(text)
        self.last = now

    def line(self, text: str, now: float) -> None:
        """One line of build.sh's stderr, read at ``now`` (monotonic seconds)."""
        self.tail.append(text)
        m = _BUILD_LINE.match(text)
        msg = m["msg"] if m else None
        if msg is not None:
            if msg == "downloading modules":
                self.component, self.since = "module downloads", now
            elif step := _STEP_START.match(msg):
                self.component, self.since = step["name"], now
            elif _STEP_END.match(msg):
                self.component = None
        if self._held is not None:
            if msg is not None and msg.startswith("up to date"):
                self._held = None
                self._emit(text, now)
                return
            if msg is not None and not msg.startswith(("building", "installing")) and not _STEP_START.match(msg):
                self._held.append(text)
                return
            self.flush(now)
        self._emit(text, now)

    def tick(self, now: float) -> None:
        """Say a heartbeat if a component compiles and nothing was said for ``heartbeat`` seconds."""
        if self.component is not None and now - self.last >= self.heartbeat:
            self._emit(heartbeat_line(self.component, now - self.since, now - self.start), now)

    def flush(self, now: float) -> None:
        """Show the held-back lines (the build turned out not to be cached, or ended)."""
        held, self._held = self._held or [], None
        for text in held:
            self._emit(text, now)


def stream_build(
    cmd: Sequence[str],
    *,
    env: dict[str, str] | None = None,
    say: Callable[[str], None] | None = None,
    heartbeat: float = HEARTBEAT_SECONDS,
) -> tuple[int, str, list[str]]:
    """Run a build command, passing its stderr lines through :class:`BuildProgress` to ``say`` as they come.

    Returns the exit code, the whole stdout, and the last stderr lines.
    """
    start = time.monotonic()
    progress = BuildProgress(say or (lambda _m: None), start=start, heartbeat=heartbeat)
    with subprocess.Popen(
        list(cmd), env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:  # closes both pipes on the way out
        out, err = proc.stdout, proc.stderr
        assert out is not None and err is not None  # both piped above
        err_lines: queue.Queue[str | None] = queue.Queue()
        stdout: list[str] = []

        def pump_stderr() -> None:
            for raw in err:
                err_lines.put(raw.rstrip("\n"))
            err_lines.put(None)

        readers = [
            threading.Thread(target=pump_stderr, daemon=True),
            threading.Thread(target=lambda: stdout.append(out.read()), daemon=True),
        ]
        for t in readers:
            t.start()
        try:
            while True:
                try:
                    item = err_lines.get(timeout=min(1.0, heartbeat / 4))
                except queue.Empty:
                    item = ""
                now = time.monotonic()
                if item is None:
                    break
                if item:
                    progress.line(item, now)
                progress.tick(now)
            rc = proc.wait()
            for t in readers:
                t.join()
        finally:
            if proc.poll() is None:  # interrupted: stop the build we started
                proc.terminate()
                proc.wait()
    progress.flush(time.monotonic())
    return rc, "".join(stdout), list(progress.tail)


def _print_stderr(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


class Sandbox:
    """Build, start, inspect and stop the local Kubernetes + Argo CD sandbox.

    Example:
        >>> sb = Sandbox()
        >>> sb.up()                      # builds first if needed; a no-op when already up
        >>> sb.kubeconfig                # path for the kubernetes client / KUBECONFIG
        >>> sb.down()
    """

    def __init__(
        self,
        state_dir: str | Path | None = None,
        *,
        cache_dir: str | Path | None = None,
        ports: Ports | None = None,
        app_resync_seconds: int = 10,
        event_ttl: str | None = None,
        spokes: int = 0,
    ) -> None:
        if not 0 <= spokes <= MAX_SPOKES:
            raise SandboxError(f"spokes={spokes}: a sandbox has 0 to {MAX_SPOKES} spoke clusters")
        self.spokes = spokes
        self.state = Path(state_dir) if state_dir else default_state()
        self.cache = Path(cache_dir) if cache_dir else default_cache()
        self.ports = ports or Ports()
        self.app_resync_seconds = app_resync_seconds
        #: the API server's ``--event-ttl`` (how long Events live; default ``$GITOPS_NB_EVENT_TTL`` or 24h): a
        #: runtime flag, not part of the build, so it never changes the build cache key
        self.event_ttl = event_ttl or os.environ.get("GITOPS_NB_EVENT_TTL") or "24h"
        if not re.fullmatch(r"(\d+(\.\d+)?(ns|us|ms|s|m|h))+", self.event_ttl):
            raise SandboxError(f"event_ttl {self.event_ttl!r} is not a Go duration: use e.g. 2m, 1h, 24h")
        self.kubeconfig = self.state / "kubeconfig"
        self._bin: Path | None = None

    # -- build ----------------------------------------------------------------

    def build(
        self,
        *,
        quiet: bool = False,
        progress: Callable[[str], None] | None = None,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> Path:
        """Compile (or find cached) binaries with ``gitops_nb/sandbox/go/build.sh``; returns the bin dir.

        A cold build takes about 15 minutes on 2 cores, so it talks: each of build.sh's progress
        lines goes to ``progress`` (default: printed to stderr), and while a component compiles a
        heartbeat every ``heartbeat`` seconds says which one, for how long, and what a cold build
        takes. A cached build says one "up to date" line. ``quiet`` says nothing (a failure still
        quotes the build's last lines).
        """
        script = go_dir() / "build.sh"
        if not script.exists():
            raise SandboxBuildError(f"{script} is missing: reinstall gitops-nb (the wheel ships it)")
        env = {**os.environ, "GITOPS_NB_CACHE": str(self.cache)}
        say = None if quiet else (progress or _print_stderr)
        rc, stdout, tail = stream_build(["bash", str(script)], env=env, say=say, heartbeat=heartbeat)
        if rc != 0:
            last = "" if say else "; its last lines:\n    " + "\n    ".join(tail[-15:])
            raise SandboxBuildError(
                f"the sandbox build failed (exit {rc}); its progress lines {'above ' if say else ''}say which "
                "component; rerun `gitops-nb sandbox build` after fixing (the Go module cache is kept)" + last
            )
        lines = stdout.strip().splitlines()
        if not lines or not Path(lines[-1]).is_dir():
            raise SandboxBuildError(f"the sandbox build did not print its bin dir (got {stdout[-200:]!r})")
        self._bin = Path(lines[-1])
        return self._bin

    @property
    def bin(self) -> Path:
        """The bin dir of the current build (built on first use, with progress on stderr)."""
        if self._bin is None:
            self._bin = self.build()
        return self._bin

    # -- state files ----------------------------------------------------------

    def _pidfile(self, c: str) -> Path:
        return self.state / "pids" / f"{c.replace(':', '-')}.pid"

    def log(self, c: str) -> Path:
        """The log file of component ``c`` (``spoke-1:kwok`` for a spoke's)."""
        return self.state / "logs" / f"{c.replace(':', '-')}.log"

    def _pid(self, c: str) -> int | None:
        """The pid of ``c`` if it runs, from its pid file; a stale pid file is removed."""
        f = self._pidfile(c)
        try:
            info = json.loads(f.read_text())
        except (OSError, ValueError):
            return None
        cmd = _pid_cmdline(int(info["pid"]))
        if cmd is None or info["exe"] not in cmd:
            f.unlink(missing_ok=True)  # stale: the process is gone, or the pid now belongs to another program
            return None
        return int(info["pid"])

    def _token(self) -> str:
        return (self.state / "secrets" / "token").read_text().strip()

    # -- readiness ------------------------------------------------------------

    def _https_ok(self, port: int, path: str, token: bool = True, token_file: Path | None = None) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.state / "pki" / "ca.crt"))
        ctx.check_hostname = False
        if not token:
            ctx.verify_mode = ssl.CERT_NONE  # self-signed serving certs of kcm/scheduler
        req = urllib.request.Request(f"https://127.0.0.1:{port}{path}")
        if token:
            tok = token_file.read_text().strip() if token_file else self._token()
            req.add_header("Authorization", f"Bearer {tok}")
        with urllib.request.urlopen(req, context=ctx, timeout=2) as r:
            return bool(r.status == 200)

    @staticmethod
    def _http_ok(port: int, path: str) -> bool:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return bool(r.status == 200)

    def _redis_ok(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.ports.redis), timeout=1) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")

    def _ready(self, c: str) -> bool:
        i, base = split_component(c)
        if i is not None:
            return self._spoke_ready(i, base)
        p = self.ports
        checks: dict[str, Callable[[], bool]] = {
            "redis": self._redis_ok,
            "etcd": lambda: self._http_ok(p.etcd, "/health"),
            "kube-apiserver": lambda: self._https_ok(p.apiserver, "/readyz"),
            "kube-controller-manager": lambda: self._https_ok(p.controller_manager, "/healthz", token=False),
            "kube-scheduler": lambda: self._https_ok(p.scheduler, "/healthz", token=False),
            "kwok": self._nodes_ready,
            "argocd-repo-server": lambda: self._http_ok(p.repo_server_metrics, "/healthz"),
            "argocd-application-controller": lambda: self._http_ok(p.controller_metrics, "/healthz"),
            # its health-probe server has no checks registered (404 on /healthz, /readyz): its metrics are served
            # once the manager has started
            "argocd-applicationset-controller": lambda: self._http_ok(p.appset_metrics, "/metrics"),
        }
        try:
            return checks[c]()
        except Exception:
            return False

    def _spoke_ready(self, i: int, c: str) -> bool:
        p = self.ports.spoke(i)
        checks: dict[str, Callable[[], bool]] = {
            "etcd": lambda: self._http_ok(p.etcd, "/health"),
            "kube-apiserver": lambda: self._https_ok(p.apiserver, "/readyz", token_file=self._spoke_token(i)),
            "kube-controller-manager": lambda: self._https_ok(p.controller_manager, "/healthz", token=False),
            "kube-scheduler": lambda: self._https_ok(p.scheduler, "/healthz", token=False),
            "kwok": lambda: self._nodes_ready(self.spoke_core(i)),
        }
        try:
            return checks[c]()
        except Exception:
            return False

    def _nodes_ready(self, core: Any = None) -> bool:
        nodes = (core or self.core()).list_node(label_selector="type=kwok").items
        return bool(nodes) and all(
            any(cond.type == "Ready" and cond.status == "True" for cond in (n.status.conditions or [])) for n in nodes
        )

    # -- kubernetes clients (lazy) ----------------------------------------------

    def api_client(self) -> Any:
        """A ``kubernetes.client.ApiClient`` for the sandbox (admin)."""
        from kubernetes import config

        return config.new_client_from_config(str(self.kubeconfig))

    def core(self) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.api_client())

    # -- spokes: more clusters the hub's Argo CD deploys to --------------------------------

    def spoke_state(self, i: int) -> Path:
        """Spoke ``i``'s own state (etcd data, its tokens, its service-account key, its admin kubeconfig)."""
        return self.state / "spokes" / f"spoke-{i}"

    @staticmethod
    def spoke_name(i: int) -> str:
        """Spoke ``i``'s cluster name in Argo CD (an Application's ``destination.name``)."""
        return f"spoke-{i}"

    @staticmethod
    def spoke_context(i: int) -> str:
        """Spoke ``i``'s context in :attr:`kubeconfig`."""
        return f"gitops-nb-spoke-{i}"

    def spoke_server(self, i: int) -> str:
        """Spoke ``i``'s API server URL (an Application's ``destination.server``)."""
        return f"https://127.0.0.1:{self.ports.spoke(i).apiserver}"

    def _spoke_token(self, i: int) -> Path:
        return self.spoke_state(i) / "secrets" / "token"

    def spoke_api_client(self, i: int) -> Any:
        """A ``kubernetes.client.ApiClient`` for spoke ``i`` (admin)."""
        from kubernetes import config

        return config.new_client_from_config(str(self.kubeconfig), context=self.spoke_context(i))

    def spoke_core(self, i: int) -> Any:
        from kubernetes import client

        return client.CoreV1Api(self.spoke_api_client(i))

    def _known_spokes(self) -> list[int]:
        """Spokes asked for, and any an earlier ``up`` prepared (so ``down`` and ``status`` see them all)."""
        found = {int(d.name.split("-")[1]) for d in (self.state / "spokes").glob("spoke-*") if d.is_dir()}
        return sorted(found | set(range(1, self.spokes + 1)))

    def _prepare_spoke(self, i: int) -> None:
        """Spoke ``i``'s dirs, service-account key and two tokens: an admin one for its own controllers and
        the kubeconfig, and one for Argo CD's cluster Secret (both 0600, never printed)."""
        d = self.spoke_state(i)
        for sub in ("etcd", "secrets", "pki"):
            (d / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(d / "secrets", 0o700)
        if not (d / "pki" / "sa.key").exists():
            for args in (["genrsa", "-out", "sa.key", "2048"], ["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"]):
                res = subprocess.run(["openssl", *args], cwd=d / "pki", capture_output=True, text=True)
                if res.returncode != 0:
                    raise SandboxStartError(f"openssl {args[0]} failed: {res.stderr.strip()} (is openssl installed?)")
            os.chmod(d / "pki" / "sa.key", 0o600)
        sec = d / "secrets"
        if not (sec / "token.csv").exists():
            for f in ("token", "argocd-token"):
                (sec / f).write_text(secrets.token_hex(24))
                os.chmod(sec / f, 0o600)
            admin, argo = (sec / "token").read_text(), (sec / "argocd-token").read_text()
            (sec / "token.csv").write_text(
                f"{admin},sandbox-admin,sandbox-admin,system:masters\n"
                f"{argo},argocd-manager,argocd-manager,system:masters\n"
            )
            os.chmod(sec / "token.csv", 0o600)
        own = {  # the spoke's own controllers read this one
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "spoke",
            "clusters": [
                {
                    "name": "spoke",
                    "cluster": {
                        "server": self.spoke_server(i),
                        "certificate-authority": str(self.state / "pki" / "ca.crt"),
                    },
                }
            ],
            "users": [{"name": "admin", "user": {"tokenFile": str(sec / "token")}}],
            "contexts": [{"name": "spoke", "context": {"cluster": "spoke", "user": "admin"}}],
        }
        (d / "kubeconfig").write_text(json.dumps(own, indent=1) + "\n")
        os.chmod(d / "kubeconfig", 0o600)

    def _spoke_command(self, i: int, c: str) -> tuple[list[str], dict[str, str]]:
        d = self.spoke_state(i)
        env = {
            "PATH": f"{self.bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.state / "home"),
            "LANG": "C.UTF-8",
        }
        name = self.spoke_name(i)
        plane = _Plane(
            name, self.ports.spoke(i), d, d / "etcd", d / "pki", str(d / "kubeconfig"), f"{name}.sandbox.local"
        )
        return self._plane_command(c, plane), env

    def _plane_command(self, c: str, plane: _Plane) -> list[str]:
        """The command of a control plane's component (the hub's, or a spoke's): etcd, kube-apiserver,
        kube-controller-manager, kube-scheduler or kwok. Every plane serves with the hub's CA and
        certificate (127.0.0.1) and has its own etcd, tokens and service-account key pair."""
        b, p, pki, kc = self.bin, plane.ports, self.state / "pki", plane.kubeconfig
        if c == "etcd":
            return [
                str(b / "etcd"),
                "--name",
                plane.name,
                "--data-dir",
                str(plane.etcd),
                "--listen-client-urls",
                f"http://127.0.0.1:{p.etcd}",
                "--advertise-client-urls",
                f"http://127.0.0.1:{p.etcd}",
                "--listen-peer-urls",
                f"http://127.0.0.1:{p.etcd_peer}",
                "--initial-advertise-peer-urls",
                f"http://127.0.0.1:{p.etcd_peer}",
                "--initial-cluster",
                f"{plane.name}=http://127.0.0.1:{p.etcd_peer}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes",
                str(2 * 1024**3),
                "--log-level",
                "warn",
            ]
        if c == "kube-apiserver":
            return [
                str(b / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{p.etcd}",
                "--bind-address=127.0.0.1",
                f"--secure-port={p.apiserver}",
                "--advertise-address=127.0.0.1",
                f"--cert-dir={plane.pki}",
                f"--tls-cert-file={pki / 'apiserver.crt'}",
                f"--tls-private-key-file={pki / 'apiserver.key'}",
                f"--client-ca-file={pki / 'ca.crt'}",
                "--service-cluster-ip-range=10.96.0.0/16",
                f"--service-account-issuer=https://{plane.issuer}",
                f"--service-account-key-file={plane.pki / 'sa.pub'}",
                f"--service-account-signing-key-file={plane.pki / 'sa.key'}",
                "--authorization-mode=RBAC",
                f"--token-auth-file={plane.state / 'secrets' / 'token.csv'}",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                f"--event-ttl={self.event_ttl}",
                "-v=1",
            ]
        if c in ("kube-controller-manager", "kube-scheduler"):
            port = p.controller_manager if c == "kube-controller-manager" else p.scheduler
            cmd = [
                str(b / c),
                f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                "--leader-elect=false",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                "-v=1",
            ]
            if c == "kube-controller-manager":
                cmd += [
                    f"--service-account-private-key-file={plane.pki / 'sa.key'}",
                    f"--root-ca-file={pki / 'ca.crt'}",
                    "--use-service-account-credentials=false",
                    "--concurrent-deployment-syncs=10",
                    "--controllers=*,-nodeipam,-ttl,-bootstrapsigner,-tokencleaner",
                ]
            return cmd
        if c == "kwok":
            return [
                str(b / "kwok"),
                f"--kubeconfig={kc}",
                "--manage-all-nodes=false",
                f"--manage-nodes-with-annotation-selector={FAKE_NODE_ANNOTATION}=fake",
                f"--server-address=127.0.0.1:{p.kwok}",
                "--cidr=10.0.0.1/24",
                "--node-ip=10.0.0.1",
                # Renew a node Lease (every 10 s) as a kubelet does. Without it kwok only re-posts node status
                # after the node controller has marked the node NotReady, which happened every ~55 s and marked
                # every pod on it not Ready for good: Deployments, and their Applications, stuck Progressing.
                "--node-lease-duration-seconds=40",
            ]
        raise SandboxError(f"unknown control-plane component {c!r}: one of {', '.join(SPOKE_COMPONENTS)}")

    def _register_spoke(self, i: int) -> None:
        """Spoke ``i`` as a cluster Secret in the hub's Argo CD (declarative setup): name, server, and a
        ``config`` with its bearer token and CA. Written again on every ``up`` (a reset spoke has new tokens)."""
        import base64

        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        ca = base64.b64encode((self.state / "pki" / "ca.crt").read_bytes()).decode()
        token = (self.spoke_state(i) / "secrets" / "argocd-token").read_text().strip()
        body = client.V1Secret(
            metadata=client.V1ObjectMeta(
                name=f"cluster-{self.spoke_name(i)}", namespace=ARGOCD_NS, labels={**CLUSTER_SECRET_LABEL, **PART_OF}
            ),
            type="Opaque",
            string_data={
                "name": self.spoke_name(i),
                "server": self.spoke_server(i),
                "config": json.dumps({"bearerToken": token, "tlsClientConfig": {"insecure": False, "caData": ca}}),
            },
        )
        core = self.core()
        try:
            core.create_namespaced_secret(ARGOCD_NS, body)
        except ApiException as e:
            if e.status != 409:
                raise SandboxStartError(
                    f"could not register {self.spoke_name(i)} with Argo CD: {e.status} {e.reason}"
                ) from None
            core.replace_namespaced_secret(f"cluster-{self.spoke_name(i)}", ARGOCD_NS, body)

    def _spoke_up(self, i: int, timeout: float, say: Callable[[str], None]) -> dict[str, float]:
        times: dict[str, float] = {}
        for c in SPOKE_COMPONENTS:
            name = spoke_component(i, c)
            t = time.monotonic()
            if c == "kube-controller-manager":  # the API server answers: its fake nodes before kwok manages them
                self._make_nodes(self.spoke_core(i))
            say(f"{name}: starting")
            self._start(name, timeout)
            times[name] = round(time.monotonic() - t, 2)
            say(f"{name}: ready in {times[name]:.1f}s")
        self._register_spoke(i)
        say(
            f"{self.spoke_name(i)}: registered with Argo CD as {self.spoke_server(i)} (context {self.spoke_context(i)})"
        )
        return times

    # -- up / down ------------------------------------------------------------

    def _prepare(self) -> None:
        for d in ("pids", "logs", "pki", "secrets", "etcd", "argocd/tls", "argocd/ssh", "argocd/gnupg", "home"):
            (self.state / d).mkdir(parents=True, exist_ok=True)
        os.chmod(self.state / "secrets", 0o700)
        pki = self.state / "pki"
        if not (pki / "apiserver.crt").exists():
            self._make_pki(pki)
        tok = self.state / "secrets" / "token"
        if not tok.exists():
            tok.write_text(secrets.token_hex(24))
            os.chmod(tok, 0o600)
            (self.state / "secrets" / "token.csv").write_text(
                f"{self._token()},sandbox-admin,sandbox-admin,system:masters\n"
            )
            os.chmod(self.state / "secrets" / "token.csv", 0o600)
        self._write_kubeconfig()

    def _make_pki(self, pki: Path) -> None:
        def ssl_(*args: str) -> None:
            res = subprocess.run(["openssl", *args], cwd=pki, capture_output=True, text=True)
            if res.returncode != 0:
                raise SandboxStartError(f"openssl {args[0]} failed: {res.stderr.strip()} (is openssl installed?)")

        ssl_(
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            "/CN=gitops-nb-sandbox-ca",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
        )
        (pki / "san.cnf").write_text(
            "[req]\ndistinguished_name=dn\n[dn]\n[ext]\nsubjectAltName=IP:127.0.0.1,DNS:localhost,"
            "DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,IP:10.96.0.1\n"
            "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
        )
        ssl_(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=kube-apiserver",
            "-keyout",
            "apiserver.key",
            "-out",
            "apiserver.csr",
        )
        ssl_(
            "x509",
            "-req",
            "-in",
            "apiserver.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "3650",
            "-extfile",
            "san.cnf",
            "-extensions",
            "ext",
            "-out",
            "apiserver.crt",
        )
        ssl_("genrsa", "-out", "sa.key", "2048")
        ssl_("rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub")
        for key in ("ca.key", "apiserver.key", "sa.key"):
            os.chmod(pki / key, 0o600)

    def _write_kubeconfig(self) -> None:
        cfg: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "gitops-nb-sandbox",
            "clusters": [
                {
                    "name": "gitops-nb-sandbox",
                    "cluster": {
                        "server": f"https://127.0.0.1:{self.ports.apiserver}",
                        "certificate-authority": str(self.state / "pki" / "ca.crt"),
                    },
                }
            ],
            "users": [{"name": "sandbox-admin", "user": {"tokenFile": str(self.state / "secrets" / "token")}}],
            "contexts": [
                {"name": "gitops-nb-sandbox", "context": {"cluster": "gitops-nb-sandbox", "user": "sandbox-admin"}}
            ],
        }
        for i in self._known_spokes():  # one context per spoke, each with its own admin token
            if not self._spoke_token(i).exists():
                continue
            ctx = self.spoke_context(i)
            ca = str(self.state / "pki" / "ca.crt")
            cfg["clusters"].append(
                {"name": ctx, "cluster": {"server": self.spoke_server(i), "certificate-authority": ca}}
            )
            cfg["users"].append({"name": f"{ctx}-admin", "user": {"tokenFile": str(self._spoke_token(i))}})
            cfg["contexts"].append({"name": ctx, "context": {"cluster": ctx, "user": f"{ctx}-admin"}})
        self.kubeconfig.write_text(json.dumps(cfg, indent=1) + "\n")
        os.chmod(self.kubeconfig, 0o600)

    def _command(self, c: str) -> tuple[list[str], dict[str, str]]:
        i, base = split_component(c)
        if i is not None:
            return self._spoke_command(i, base)
        b, s, p, kc = self.bin, self.state, self.ports, str(self.kubeconfig)
        pki = s / "pki"
        env = {"PATH": f"{b}:{os.environ.get('PATH', '/usr/bin:/bin')}", "HOME": str(s / "home"), "LANG": "C.UTF-8"}
        if c == "redis":
            redis = shutil.which("redis-server")
            if not redis:
                raise SandboxStartError("redis-server is not installed: run `gitops-nb sandbox build` (it installs it)")
            return [
                redis,
                "--port",
                str(p.redis),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ], env
        if c in SPOKE_COMPONENTS:  # the control plane: the same command as a spoke's, with the hub's paths
            return self._plane_command(
                c, _Plane("sandbox", p, s, s / "etcd", pki, kc, "kubernetes.default.svc.cluster.local")
            ), env
        argo_env = {
            **env,
            "KUBECONFIG": kc,
            "ARGOCD_FAKE_IN_CLUSTER": "true",
            "ARGOCD_GPG_ENABLED": "false",
            "ARGOCD_TLS_DATA_PATH": str(s / "argocd" / "tls"),
            "ARGOCD_SSH_DATA_PATH": str(s / "argocd" / "ssh"),
            "ARGOCD_GNUPGHOME": str(s / "argocd" / "gnupg"),
        }
        if c == "argocd-repo-server":
            return [
                str(b / "argocd"),
                "repo-server",
                "--address",
                "127.0.0.1",
                "--port",
                str(p.repo_server),
                "--metrics-address",
                "127.0.0.1",
                "--metrics-port",
                str(p.repo_server_metrics),
                "--redis",
                f"127.0.0.1:{p.redis}",
                "--disable-tls",
                "--revision-cache-expiration",
                "3s",
                "--logformat",
                "text",
            ], argo_env
        if c == "argocd-application-controller":
            return [
                str(b / "argocd"),
                "application-controller",
                f"--kubeconfig={kc}",
                "--namespace",
                ARGOCD_NS,
                "--redis",
                f"127.0.0.1:{p.redis}",
                "--repo-server",
                f"127.0.0.1:{p.repo_server}",
                "--repo-server-plaintext",
                "--app-resync",
                str(self.app_resync_seconds),
                "--app-resync-jitter",
                "0",
                "--persist-resource-health",  # v3 keeps resource health out of the CRD by default
                "--metrics-port",
                str(p.controller_metrics),
                "--status-processors",
                "4",
                "--operation-processors",
                "4",
                "--logformat",
                "text",
            ], argo_env
        if c == "argocd-applicationset-controller":
            # Upstream's defaults listen on all interfaces (:8080, :8081, :7000): keep all three on loopback.
            return [
                str(b / "argocd"),
                "applicationset-controller",
                f"--kubeconfig={kc}",
                "--namespace",
                ARGOCD_NS,
                "--argocd-repo-server",
                f"127.0.0.1:{p.repo_server}",
                "--repo-server-plaintext",
                "--metrics-addr",
                f"127.0.0.1:{p.appset_metrics}",
                "--probe-addr",
                f"127.0.0.1:{p.appset_probe}",
                "--webhook-addr",
                f"127.0.0.1:{p.appset_webhook}",
                "--enable-scm-providers=false",  # no SCM or pull-request generators offline
                "--logformat",
                "text",
            ], argo_env
        raise SandboxError(f"unknown component {c!r}: one of {', '.join(COMPONENTS)}")

    def _start(self, c: str, timeout: float) -> None:
        if self._pid(c) is not None:
            _wait(lambda: self._ready(c), timeout, c, self.log(c))
            return
        port = self.ports.of(c)
        if not _port_free(port):
            raise SandboxStartError(
                f"cannot start {c}: 127.0.0.1:{port} is already in use by a process this sandbox did not start. "
                f"Stop that process, or pick other ports with GITOPS_NB_SANDBOX_PORT_BASE (now {self.ports.base})"
            )
        cmd, env = self._command(c)
        log = self.log(c)
        with log.open("ab") as out:
            out.write(f"\n--- {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} starting {c}\n".encode())
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.state,
                start_new_session=True,
            )
        _STARTED[proc.pid] = proc
        self._pidfile(c).write_text(json.dumps({"pid": proc.pid, "exe": cmd[0], "started": time.time()}))

        def ready() -> bool:
            if proc.poll() is not None:
                raise SandboxStartError(f"{c} exited with code {proc.returncode} right after starting; see {log}")
            return self._ready(c)

        try:
            _wait(ready, timeout, c, log)
        except SandboxStartError as e:
            if proc.poll() is not None:
                tail = "\n    ".join(log.read_text(errors="replace").splitlines()[-15:])
                raise SandboxStartError(f"{c} exited with code {proc.returncode}; see {log}\n    {tail}") from e
            raise
        i, base = split_component(c)
        if base == "kwok":  # only after a (re)start: never touch a running sandbox's pods
            self._recycle_stale_pods(self.spoke_core(i) if i is not None else None)

    def up(self, *, timeout: float = 180, progress: Callable[[str], None] | None = None) -> dict[str, float]:
        """Start every component and wait until each is ready; a no-op for parts already up.

        Returns the seconds each component took to be ready.
        """
        say = progress or (lambda _m: None)
        self.bin  # noqa: B018 - build (or find the cache) before anything starts
        if self.is_up():  # everything runs and answers: bootstrapped already, touch nothing
            say("already up: every component is running and ready")
            return dict.fromkeys(self._components(), 0.0)
        for i in range(1, self.spokes + 1):
            self._prepare_spoke(i)
        self._prepare()
        times: dict[str, float] = {}
        for c in COMPONENTS:
            t = time.monotonic()
            if c == "kwok":
                self._bootstrap(timeout)
            say(f"{c}: starting")
            self._start(c, timeout)
            times[c] = round(time.monotonic() - t, 2)
            say(f"{c}: ready in {times[c]:.1f}s")
        for i in range(1, self.spokes + 1):
            times.update(self._spoke_up(i, timeout, say))
        return times

    def _components(self, spokes: Sequence[int] | None = None) -> list[str]:
        """The hub's components, then each spoke's (those asked for, or ``spokes``)."""
        ids = range(1, self.spokes + 1) if spokes is None else spokes
        return [*COMPONENTS, *(spoke_component(i, c) for i in ids for c in SPOKE_COMPONENTS)]

    def down(self, *, timeout: float = 20) -> list[str]:
        """Stop exactly the processes ``up`` started (by their pid files); returns the ones stopped."""
        return [c for c in reversed(self._components(self._known_spokes())) if self._stop(c, timeout)]

    def restart(self, component: str, *, timeout: float = 60) -> float:
        """Stop one component and start it again (a drill: e.g. an API server restart); returns seconds to ready."""
        self._check_component(component)
        t = time.monotonic()
        self._stop(component, 20)
        self._start(component, timeout)
        return round(time.monotonic() - t, 2)

    def stop(self, component: str, *, timeout: float = 20) -> bool:
        """Stop one component (a drill: ``spoke-2:kube-apiserver`` makes spoke 2 unreachable); True if it ran.
        ``restart`` or ``up`` starts it again."""
        self._check_component(component)
        return self._stop(component, timeout)

    def _check_component(self, component: str) -> None:
        known = self._components(self._known_spokes())
        if component not in known:
            raise SandboxError(f"unknown component {component!r}: one of {', '.join(known)}")

    def _stop(self, c: str, timeout: float) -> bool:
        pid = self._pid(c)
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        proc = _STARTED.pop(pid, None)
        if proc is not None:  # started by this process: wait() reaps it
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout)
        while time.monotonic() < deadline and _pid_cmdline(pid) is not None:
            time.sleep(0.1)
        if _pid_cmdline(pid) is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            if proc is not None:
                proc.wait(5)
        self._pidfile(c).unlink(missing_ok=True)
        return True

    def reset(self) -> None:
        """Stop everything and delete the state (etcd data, certificates, logs)."""
        self.down()
        shutil.rmtree(self.state, ignore_errors=True)

    def status(self) -> pd.DataFrame:
        """One row per component: ``component``, ``running``, ``ready``, ``pid``, ``port``, ``log``, ``rss_mb``."""
        import pandas as pd

        rows = []
        for c in self._components(self._known_spokes()):
            pid = self._pid(c)
            rows.append(
                {
                    "component": c,
                    "running": pid is not None,
                    "ready": bool(pid is not None and self.kubeconfig.exists() and self._ready(c)),
                    "pid": pid,
                    "port": self.ports.of(c),
                    "log": str(self.log(c)),
                    "rss_mb": _rss_mb(pid) if pid else None,
                }
            )
        return pd.DataFrame(rows).astype({"pid": "Int64", "rss_mb": "Float64"})

    def is_up(self) -> bool:
        """True when every component runs and is ready."""
        cs = self._components()
        return all(self._pid(c) is not None for c in cs) and all(self._ready(c) for c in cs)

    def env(self) -> str:
        """Shell line to point kubectl and the kubernetes client at the sandbox."""
        return f"export KUBECONFIG={self.kubeconfig}"

    # -- bootstrap: Argo CD's namespace, CRDs, settings, project; a fake node -------------

    def _bootstrap(self, timeout: float) -> None:
        import yaml
        from kubernetes import client

        api = self.api_client()
        core = client.CoreV1Api(api)
        self._ensure(lambda: core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ARGOCD_NS))))
        ext = client.ApiextensionsV1Api(api)
        crds = sorted((self.bin.parent / "crds").glob("*-crd.yaml"))
        if not crds:
            raise SandboxStartError(f"no Argo CD CRDs in {self.bin.parent / 'crds'}: rerun `gitops-nb sandbox build`")
        # libyaml's loader when there is one: the ApplicationSet CRD is 1 MB, 5 s with the pure-Python loader
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        for f in crds:
            body = yaml.load(f.read_text(), Loader=loader)
            self._ensure(functools.partial(ext.create_custom_resource_definition, body))

        def established(name: str) -> bool:
            status = ext.read_custom_resource_definition(name).status
            return status is not None and any(
                c.type == "Established" and c.status == "True" for c in status.conditions or []
            )

        for name in ("applications.argoproj.io", "appprojects.argoproj.io", "applicationsets.argoproj.io"):
            _wait(functools.partial(established, name), timeout, f"CRD {name}")
        self._ensure(
            lambda: core.create_namespaced_config_map(
                ARGOCD_NS,
                client.V1ConfigMap(
                    metadata=client.V1ObjectMeta(name="argocd-cm", labels=PART_OF),
                    data={"timeout.reconciliation": f"{self.app_resync_seconds}s"},
                ),
            )
        )
        self._ensure(
            lambda: core.create_namespaced_secret(
                ARGOCD_NS,
                client.V1Secret(
                    metadata=client.V1ObjectMeta(name="argocd-secret", labels=PART_OF),
                    string_data={"server.secretkey": secrets.token_urlsafe(32)},
                ),
            )
        )
        self._ensure(
            lambda: core.create_namespaced_config_map(
                ARGOCD_NS, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="argocd-rbac-cm", labels=PART_OF))
            )
        )
        custom = client.CustomObjectsApi(api)
        self._ensure(
            lambda: custom.create_namespaced_custom_object(
                "argoproj.io",
                "v1alpha1",
                ARGOCD_NS,
                "appprojects",
                {
                    "apiVersion": "argoproj.io/v1alpha1",
                    "kind": "AppProject",
                    "metadata": {"name": "default", "namespace": ARGOCD_NS},
                    "spec": {
                        "sourceRepos": ["*"],
                        "destinations": [{"server": "*", "namespace": "*"}],
                        "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
                    },
                },
            )
        )
        self._make_nodes(core)

    def _make_nodes(self, core: Any) -> None:
        """Two fake nodes for kwok to run Pods on (idempotent)."""
        from kubernetes import client

        for i in range(2):
            self._ensure(
                functools.partial(
                    core.create_node,
                    client.V1Node(
                        metadata=client.V1ObjectMeta(
                            name=f"kwok-node-{i}",
                            annotations={FAKE_NODE_ANNOTATION: "fake"},
                            labels={
                                "type": "kwok",
                                "kubernetes.io/hostname": f"kwok-node-{i}",
                                "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64",
                            },
                        ),
                        status=client.V1NodeStatus(
                            allocatable={"cpu": "64", "memory": "256Gi", "pods": "250"},
                            capacity={"cpu": "64", "memory": "256Gi", "pods": "250"},
                        ),
                    ),
                )
            )

    def _recycle_stale_pods(self, core: Any = None) -> int:
        """Delete fake pods left not Ready by an earlier run (their nodes went NotReady while we were down).

        kwok readies pods when they are created, not ones it finds marked NotReady after a
        restart; their controllers recreate them at once. Returns how many were deleted.
        """
        from kubernetes import client

        core = core or self.core()
        stale = [
            p
            for p in core.list_pod_for_all_namespaces(field_selector="spec.nodeName!=").items
            if (p.spec.node_name or "").startswith("kwok-node-")
            and p.metadata.deletion_timestamp is None
            and not any(c.type == "Ready" and c.status == "True" for c in (p.status.conditions or []))
        ]
        for p in stale:
            self._ensure_gone(
                functools.partial(
                    core.delete_namespaced_pod,
                    p.metadata.name,
                    p.metadata.namespace,
                    body=client.V1DeleteOptions(grace_period_seconds=0),
                )
            )
        return len(stale)

    @staticmethod
    def _ensure_gone(delete: Callable[[], Any]) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            delete()
        except ApiException as e:
            if e.status != 404:
                raise SandboxStartError(f"sandbox: could not delete a stale pod: {e.status} {e.reason}") from e

    @staticmethod
    def _ensure(create: Callable[[], Any]) -> None:
        """Create an object; an existing one is fine (idempotent ``up``)."""
        from kubernetes.client.exceptions import ApiException

        try:
            create()
        except ApiException as e:
            if e.status != 409:
                raise SandboxStartError(
                    f"sandbox bootstrap failed: {e.status} {e.reason}: {(e.body or '')[:300]!r}"
                ) from e


def _rss_mb(pid: int) -> float | None:
    """Resident memory of a process and its children, in MiB."""
    total = 0
    for p in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return round(total / 1024, 1) if total else None


def _children(pid: int) -> Iterator[int]:
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                for child in (task / "children").read_text().split():
                    yield int(child)
                    yield from _children(int(child))


def main_progress(msg: str) -> None:
    """Print a progress line to stderr (the CLI's progress callback)."""
    print(f"[sandbox] {msg}", file=sys.stderr, flush=True)
