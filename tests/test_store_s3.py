"""The recording store on S3: a real S3-compatible server (Versity S3 Gateway, built from its Go module by
scripts/build_s3.sh and cached under ~/.cache/gitops-nb/s3), started here on a free port. Two recorders
("two clusters") write one dataset; one read sees both. A server that cannot be built or started fails
the tests (never skips)."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

from gitops_nb.cluster.recording import Recording
from gitops_nb.cluster.store import Store
from gitops_nb.errors import StoreNotWritableError

ROOT = Path(__file__).resolve().parents[1]
T0 = pd.Timestamp("2026-11-01T00:00:00Z")


@dataclass
class S3:
    endpoint: str
    root: Path  # the gateway's posix root: each directory is a bucket
    env: dict[str, str]

    def bucket(self) -> str:
        name = f"rec-{secrets.token_hex(3)}"
        (self.root / name).mkdir()
        return name


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    """Build (once, cached) and start versitygw with a posix backend; stopped after the session."""
    capture = request.config.pluginmanager.getplugin("capturemanager")
    with capture.global_and_fixture_disabled():  # a cold build takes minutes: show its progress
        build = subprocess.run(["bash", str(ROOT / "scripts" / "build_s3.sh")], stdout=subprocess.PIPE, text=True)
    assert build.returncode == 0, "scripts/build_s3.sh failed (its output is above)"
    binary = build.stdout.strip().splitlines()[-1]
    root = tmp_path_factory.mktemp("s3root")
    port = _free_port()
    key, secret = "gitops-nb-test", secrets.token_hex(16)
    log = (root.parent / "versitygw.log").open("w")
    proc = subprocess.Popen(
        [binary, "--port", f"127.0.0.1:{port}", "--quiet", "posix", str(root)],
        env={**os.environ, "ROOT_ACCESS_KEY": key, "ROOT_SECRET_KEY": secret},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        assert proc.poll() is None, f"versitygw exited: {(root.parent / 'versitygw.log').read_text()}"
        assert time.monotonic() < deadline, "versitygw did not listen within 30s"
        time.sleep(0.1)
    env = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_REGION": "us-east-1",
    }
    try:
        yield S3(env["AWS_ENDPOINT_URL"], root, env)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        log.close()


@pytest.fixture
def s3(s3_server: S3, monkeypatch: pytest.MonkeyPatch) -> S3:
    for k, v in s3_server.env.items():
        monkeypatch.setenv(k, v)
    return s3_server


_WRITER = textwrap.dedent(
    """
    import sys, pandas as pd
    from gitops_nb.cluster.store import Store
    cluster, url, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    t0 = pd.Timestamp("2026-11-01T00:00:00Z")
    with Store(url).writer(cluster, flush_seconds=0.1, max_rows=40) as w:
        for i in range(n):
            w.append({"kind": "Deployment" if i % 2 else "ConfigMap", "namespace": "shop", "name": f"o{i % 9}",
                      "uid": f"{cluster}-{i % 9}", "app": f"app-{i % 3}", "resource_version": str(i),
                      "event": "ADDED" if i < 9 else "MODIFIED", "time": t0 + pd.Timedelta(minutes=7 * i),
                      "object": {"metadata": {"name": f"o{i % 9}", "uid": f"{cluster}-{i % 9}"}}})
            w.checkpoint("Deployment", str(i))
    print("done", flush=True)
    """
)


def test_two_clusters_write_one_dataset_and_one_read_sees_both(s3: S3) -> None:
    url = f"s3://{s3.bucket()}/fleet"
    env = {**os.environ, **s3.env, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, c, url, "400"], env=env, stdout=subprocess.PIPE, text=True)
        for c in ("east", "west")
    ]
    for p in procs:  # both write at once, each its own small files
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0 and out.strip() == "done"
    store = Store(url)
    assert store.clusters() == ["east", "west"]
    t = store.read(columns=["cluster", "kind", "uid", "resource_version"]).to_pandas()
    assert len(t) == 800 and t.groupby("cluster").size().to_dict() == {"east": 400, "west": 400}
    assert not t.duplicated(["cluster", "resource_version"]).any()
    # pushdown works on S3 as on disk: one cluster, one kind, a window, an app
    win = store.read(
        clusters=["west"], kinds=["Deployment"], apps=["app-1"], since=T0, until=T0 + pd.Timedelta(hours=10)
    ).to_pandas()
    want = [i for i in range(400) if i % 2 and i % 3 == 1 and 7 * i <= 600]
    assert sorted(int(v) for v in win["resource_version"]) == want
    cp = store.load_checkpoint("east", "Deployment")
    assert cp is not None and cp["resource_version"] == "399"
    lv = store.last_versions("west", "ConfigMap")
    assert len(lv) == 9 and lv["west-0"][0] == "396"
    # many small files per partition; compaction merges them (copy on S3) and no row is lost or doubled
    parts = store.partitions()
    assert max(len(f) for *_x, f in parts) > 1
    assert store.compact() == sum(1 for *_x, f in parts if len(f) > 1)
    assert all(len(f) == 1 for *_x, f in store.partitions())
    again = store.read(columns=["cluster", "resource_version"]).to_pandas()
    assert len(again) == 800 and not again.duplicated().any()
    # retention drops whole days
    days = sorted({d for _c, _k, d, _f in store.partitions()})
    assert len(days) == 2
    assert store.retain("1d", now=pd.Timestamp(days[-1] + "T12:00:00Z") + pd.Timedelta(days=1)) == 4  # 2 kinds x 2
    assert sorted({d for _c, _k, d, _f in store.partitions()}) == days[-1:]
    # a Recording of one of them, from S3
    rec = Recording(url, cluster="east")
    assert rec.context == "east" and rec.get_object("apps", "v1", "Deployment", "shop", "o1") is not None


def test_credentials_are_never_shown(s3: S3) -> None:
    store = Store(f"s3://{s3.bucket()}/x")
    secret = s3.env["AWS_SECRET_ACCESS_KEY"]
    shown = [repr(store), str(store.__dict__), repr(store.writer("c"))]
    for text in shown:
        assert secret not in text
    assert s3.endpoint in repr(store)


def test_missing_bucket_is_a_clear_error(s3: S3) -> None:
    with pytest.raises(StoreNotWritableError, match="bucket exists") as e:
        Store("s3://no-such-bucket-here/rec").writer("prod")
    assert s3.env["AWS_SECRET_ACCESS_KEY"] not in str(e.value)


def test_kill_9_mid_write_on_s3_leaves_whole_objects(s3: S3) -> None:
    url = f"s3://{s3.bucket()}/crash"
    env = {**os.environ, **s3.env, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", _WRITER, "east", url, "1000000"], env=env)
    store = Store(url)
    deadline = time.monotonic() + 60
    while store.read(columns=["uid"]).num_rows < 500:
        assert child.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    child.send_signal(signal.SIGKILL)
    child.wait()
    t = store.read(columns=["kind", "resource_version"]).to_pandas()
    got = sorted(int(v) for v in t["resource_version"])
    assert len(got) >= 500 and len(got) == len(set(got))  # nothing twice, every object read whole
    # a flush writes one object per kind (and day), in order: a kill mid-flush loses the rest of that last
    # batch. So each kind's rows are a prefix of what was appended for it: nothing lost from before.
    for kind, parity in (("ConfigMap", 0), ("Deployment", 1)):
        mine = sorted(int(v) for v in t.loc[t["kind"] == kind, "resource_version"])
        assert mine == list(range(parity, parity + 2 * len(mine), 2)), f"{kind}: a row missing before the last one"
