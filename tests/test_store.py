"""The recording store on a local directory: layout, pushdown reads, checkpoints, compaction, retention,
and its faults on real file systems (kill -9 mid-write, a read-only mount, a full tmpfs)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from gitops_nb.cluster.store import COLUMNS, Store, arrow_schema
from gitops_nb.errors import InputError, StoreFullError, StoreNotWritableError, StoreURLError

T0 = pd.Timestamp("2026-11-01T22:00:00Z")
ROOT = Path(__file__).resolve().parents[1]


def _row(
    i: int, *, kind: str = "Deployment", app: str | None = None, t: pd.Timestamp | None = None
) -> dict[str, object]:
    uid = f"uid-{i % 7}"
    return {
        "kind": kind,
        "api_version": "apps/v1",
        "namespace": "shop",
        "name": f"web-{i % 7}",
        "uid": uid,
        "app": app or f"app-{i % 3}",
        "resource_version": str(1000 + i),
        "event": "ADDED" if i < 7 else "MODIFIED",
        "time": t if t is not None else T0 + pd.Timedelta(minutes=10 * i),
        "changes": [] if i < 7 else [["spec.replicas", i - 1, i]],
        "manager": "kubectl-edit",
        "object": {"metadata": {"name": f"web-{i % 7}", "uid": uid, "resourceVersion": str(1000 + i)}},
    }


def _write(store: Store, n: int, cluster: str = "prod", **kw: object) -> None:
    with store.writer(cluster, flush_seconds=60) as w:
        for i in range(n):
            w.append(_row(i, **kw))  # type: ignore[arg-type]


@pytest.fixture
def mount(tmp_path: Path) -> Iterator[object]:
    """Mount a real tmpfs (options given) under tmp_path; unmounted after the test."""
    mounted: list[Path] = []

    def make(options: str) -> Path:
        d = tmp_path / f"mnt{len(mounted)}"
        d.mkdir()
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(d)], capture_output=True, text=True)
        assert r.returncode == 0, f"cannot mount a tmpfs (the test needs root): {r.stderr}"
        mounted.append(d)
        return d

    yield make
    for d in mounted:
        subprocess.run(["umount", "-l", str(d)], check=False)


def test_layout_roundtrip_and_pushdown(tmp_path: Path) -> None:
    store = Store(tmp_path / "rec")
    _write(store, 30)
    files = sorted(p.relative_to(tmp_path / "rec") for p in (tmp_path / "rec").rglob("*.parquet"))
    # 22:00 + 10 min * 30 crosses midnight: two day partitions, one file each (one flush)
    assert [str(f.parent) for f in files] == [
        "objects/cluster=prod/kind=Deployment/day=2026-11-01",
        "objects/cluster=prod/kind=Deployment/day=2026-11-02",
    ]
    t = store.read()
    assert t.num_rows == 30
    assert t.schema.names == list(COLUMNS)
    df = t.to_pandas()
    assert str(df["time"].dtype) == "datetime64[us, UTC]"
    assert json.loads(df.loc[df["resource_version"] == "1010", "changes"].iloc[0]) == [["spec.replicas", 9, 10]]
    # any Parquet engine reads the layout as is: plain pyarrow hive discovery, no gitops_nb code
    plain = pads.dataset(tmp_path / "rec" / "objects", format="parquet", partitioning="hive").to_table()
    assert plain.num_rows == 30 and set(plain.column("day").to_pylist()) == {"2026-11-01", "2026-11-02"}

    since, until = T0 + pd.Timedelta(minutes=95), T0 + pd.Timedelta(minutes=185)
    win = store.read(since=since, until=until, apps=["app-1"], columns=["time", "app", "name"]).to_pandas()
    want = [_row(i) for i in range(30)]
    want_times = sorted(
        r["time"]
        for r in want
        if r["app"] == "app-1" and since <= r["time"] <= until  # type: ignore[operator]
    )
    assert list(win["time"]) == want_times and len(want_times) == 3
    assert store.read(kinds=["Secret"]).num_rows == 0
    assert store.read(clusters=["other"]).num_rows == 0
    # the day range prunes partitions: the window's filter never opens the other day's file
    expr = store.filter(since=T0 + pd.Timedelta(hours=3), until=T0 + pd.Timedelta(hours=4))
    frags = list(store.dataset().get_fragments(filter=expr))
    assert [f.path.split("/")[-2] for f in frags] == ["day=2026-11-02"]
    with pytest.raises(InputError, match="unknown store column"):
        store.read(columns=["nope"])


def test_last_versions_checkpoint_and_deleted(tmp_path: Path) -> None:
    store = Store(tmp_path)
    assert store.last_versions("prod", "Deployment") == {}
    assert store.load_checkpoint("prod", "Deployment") is None
    with store.writer("prod", flush_seconds=60) as w:
        for i in range(20):
            w.append(_row(i))
        w.append({**_row(20), "event": "DELETED", "uid": "uid-3"})  # uid-3 is gone
        w.checkpoint("Deployment", "1020")
    lv = store.last_versions("prod", "Deployment")
    assert set(lv) == {f"uid-{k}" for k in range(7)} - {"uid-3"}
    assert lv["uid-5"] == ("1019", T0 + pd.Timedelta(minutes=190))  # i=19 is the last with i % 7 == 5
    cp = store.load_checkpoint("prod", "Deployment")
    assert cp is not None and cp["resource_version"] == "1020" and cp["cluster"] == "prod"


def test_secret_values_never_stored(tmp_path: Path) -> None:
    store = Store(tmp_path)
    planted = "c3VwZXItc2VjcmV0LXZhbHVlLTQy"  # base64 of a planted secret
    with store.writer("prod") as w:
        w.append(
            {
                "kind": "Secret",
                "api_version": "v1",
                "namespace": "shop",
                "name": "db",
                "uid": "s1",
                "event": "MODIFIED",
                "time": T0,
                "changes": [["data.password", "b2xk", planted]],
                "object": {
                    "kind": "Secret",
                    "metadata": {
                        "name": "db",
                        "annotations": {"kubectl.kubernetes.io/last-applied-configuration": planted, "team": "a"},
                    },
                    "data": {"password": planted},
                    "stringData": {"password": "plain"},
                },
            }
        )
    raw = b"".join(p.read_bytes() for p in tmp_path.rglob("*.parquet"))
    text = store.read().to_pandas().to_json()
    for blob in (text, raw.decode("latin-1")):
        assert planted not in blob and "plain" not in blob
    row = store.read().to_pandas().iloc[0]
    assert json.loads(row["changes"]) == [["data.password", None, None]]
    assert json.loads(row["object"])["metadata"]["annotations"] == {"team": "a"}


def test_rows_are_checked(tmp_path: Path) -> None:
    store = Store(tmp_path)
    with store.writer("prod") as w:
        with pytest.raises(InputError, match="event must be one of"):
            w.append({**_row(0), "event": "UPDATED"})
        with pytest.raises(InputError, match="needs its time"):
            w.append({**_row(0), "time": None})
        with pytest.raises(InputError, match="unknown column"):
            w.append({**_row(0), "password": "x"})
        with pytest.raises(InputError, match="object must be a dict or JSON text"):
            w.append({**_row(0), "object": ["not", "an", "object"]})
    assert store.read().num_rows == 0


def test_bad_urls(tmp_path: Path) -> None:
    with pytest.raises(StoreURLError, match="not supported"):
        Store("ftp://host/x")
    with pytest.raises(StoreURLError, match="carries credentials") as e:
        Store("s3://AKIAXXXX:hunter2@bucket/prefix")
    assert "hunter2" not in str(e.value) and "hunter2" not in repr(e.value.url)
    with pytest.raises(StoreURLError, match="names no bucket"):
        Store("s3:///prefix")
    assert isinstance(e.value, InputError)


def test_writer_flushes_in_small_batches_with_backpressure(tmp_path: Path) -> None:
    store = Store(tmp_path)
    w = store.writer("prod", flush_seconds=0.2, max_rows=5, max_buffer=10)
    for i in range(40):
        w.append(_row(i, t=T0))
        assert w.pending <= 10  # never more than max_buffer rows in memory
    w.close()
    assert store.read().num_rows == 40
    assert w.files_written >= 4  # 40 rows in batches of at most ~10
    # the background thread flushes on time alone too
    w2 = store.writer("prod", flush_seconds=0.2)
    w2.append(_row(1, t=T0 + pd.Timedelta(days=1)))
    deadline = time.monotonic() + 5
    while store.read(since=T0 + pd.Timedelta(hours=12)).num_rows == 0:
        assert time.monotonic() < deadline, "the writer did not flush within its interval"
        time.sleep(0.05)
    w2.close()


def test_compact_merges_files_and_never_shows_a_row_twice(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for k in range(6):  # six writers' worth of files in one partition
        with store.writer("prod") as w:
            for i in range(k * 10, k * 10 + 10):
                w.append({**_row(i, t=T0 + pd.Timedelta(seconds=i)), "uid": f"u{i}"})
    assert len(store.partitions()[0][3]) == 6
    seen: list[int] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not stop.is_set():
                uids = store.read(columns=["uid"]).column("uid").to_pylist()
                assert len(uids) == len(set(uids)), "a row was visible twice"
                seen.append(len(uids))
        except BaseException as e:  # pragma: no cover - reported below
            errors.append(e)

    th = threading.Thread(target=reader)
    th.start()
    steps: list[str] = []
    try:
        assert store.compact(progress=steps.append) == 1
    finally:
        stop.set()
        th.join()
    assert not errors, errors
    assert seen and max(seen) == 60
    parts = store.partitions()
    assert len(parts) == 1 and len(parts[0][3]) == 1 and "compact-" in parts[0][3][0]
    assert steps == [
        "compacting 1/1: cluster=prod kind=Deployment day=2026-11-01 (6 files)",
        "compacted 1 partition(s)",
    ]
    assert store.read().num_rows == 60
    assert not list(tmp_path.rglob(".*")), "hidden leftovers after compaction"
    assert store.compact() == 0  # nothing left to merge


def test_compact_recovers_from_a_crash_between_steps(tmp_path: Path) -> None:
    store = Store(tmp_path)
    for k in range(3):
        with store.writer("prod") as w:
            w.append({**_row(k, t=T0), "uid": f"u{k}"})
    (_c, _k, _d, files) = store.partitions()[0]
    # what compact() leaves when killed after hiding the sources, before publishing the merged file
    d = os.path.dirname(files[0])
    merged = pa.concat_tables([pq.read_table(f, schema=arrow_schema(partitions=False)) for f in files])
    pq.write_table(merged, f"{d}/.compact-x-00000000.parquet.pending")
    store.put(
        f"{store.root}/_compaction/compact-x-00000000.parquet.json",
        json.dumps({"dir": d, "target": "compact-x-00000000.parquet", "sources": files}).encode(),
    )
    for f in files[:2]:
        os.rename(f, f"{d}/.{os.path.basename(f)}.compacted")
    assert store.read().num_rows == 1  # mid-compaction: rows absent, none doubled
    store.recover()
    assert sorted(store.read().column("uid").to_pylist()) == ["u0", "u1", "u2"]
    assert not list(tmp_path.rglob(".*")) and not list((tmp_path / "_compaction").iterdir())


def test_retain_drops_whole_old_days(tmp_path: Path) -> None:
    store = Store(tmp_path)
    now = pd.Timestamp("2026-12-15T12:00:00Z")
    with store.writer("prod") as w:
        for days in (40, 31, 30, 29, 1, 0):
            w.append(_row(days, t=now - pd.Timedelta(days=days)))
    # a day hidden by an earlier run that died before removing it is cleaned up
    leftover = tmp_path / "objects" / "cluster=prod" / "kind=Deployment" / ".dropped-2026-01-01-abcd"
    leftover.mkdir(parents=True)
    (leftover / "x.parquet").write_bytes(b"")
    dropped = store.retain("30d", now=now)
    assert not leftover.exists()
    left = sorted({d for _c, _k, d, _f in store.partitions()})
    # 2026-11-15 12:00 is the cutoff: the 15th still holds rows newer than it, so it stays
    assert dropped == 2 and left == ["2026-11-15", "2026-11-16", "2026-12-14", "2026-12-15"]
    assert store.read().num_rows == 4
    with pytest.raises(InputError, match="not a duration"):
        store.retain("a month")
    with pytest.raises(InputError, match="positive"):
        store.retain("-1d")


_CHILD = textwrap.dedent(
    """
    import sys, pandas as pd
    from gitops_nb.cluster.store import Store
    w = Store(sys.argv[1]).writer("prod", flush_seconds=0.05, max_rows=50)
    t0 = pd.Timestamp("2026-11-01T00:00:00Z")
    i = 0
    while True:
        w.append({"kind": "Event", "name": f"e{i}", "uid": f"u{i}", "resource_version": str(i),
                  "event": "ADDED", "time": t0 + pd.Timedelta(milliseconds=i), "object": {"pad": "x" * 2000}})
        if i % 50 == 0:
            print(w.rows_written, flush=True)
        i += 1
    """
)


def test_kill_9_mid_write_loses_only_unflushed_rows(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout is not None
    flushed = 0
    deadline = time.monotonic() + 60
    while flushed < 3000:  # many files written and more being written when it dies
        line = child.stdout.readline()
        assert line, "the writer process died on its own"
        flushed = int(line)
        assert time.monotonic() < deadline
    child.send_signal(signal.SIGKILL)
    child.wait()
    child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    store = Store(tmp_path)
    files = list(tmp_path.rglob("*.parquet"))
    for f in files:  # every visible file is whole
        assert pq.read_table(f).num_rows > 0
    got = sorted(int(u[1:]) for u in store.read(columns=["uid"]).column("uid").to_pylist())
    # nothing lost that the writer had reported flushed, nothing twice, no gap: a prefix of what was appended
    assert len(got) >= flushed
    assert got == list(range(len(got)))
    # a restarted writer appends after it without touching what is there
    with store.writer("prod") as w:
        w.append({"kind": "Event", "uid": "after", "event": "ADDED", "time": T0})
    assert store.read().num_rows == len(got) + 1


def test_not_writable_store_is_a_clear_error(mount: object) -> None:
    ro = mount("ro,size=1m")  # type: ignore[operator]
    with pytest.raises(StoreNotWritableError, match=r"Read-only file system") as e:
        Store(ro / "rec").writer("prod")
    assert "Give a store the recorder may write" in str(e.value)


def test_disk_full_is_a_clear_error_and_keeps_what_was_flushed(mount: object) -> None:
    small = mount("size=256k")  # type: ignore[operator]
    store = Store(small)
    w = store.writer("prod", flush_seconds=60)
    for i in range(20):
        w.append(_row(i, t=T0))
    w.flush()
    before = store.read().num_rows
    assert before == 20
    big = os.urandom(8000)  # incompressible: fills the tmpfs in a few dozen files
    with pytest.raises(StoreFullError, match="no space left") as e:
        for i in range(1000):
            w.append({**_row(i, t=T0), "object": {"blob": big.hex()}})
            w.flush()
    assert "Free space" in str(e.value)
    with pytest.raises(StoreFullError):  # the writer stays failed: the recorder exits
        w.append(_row(0, t=T0))
    assert not [p for p in small.rglob(".*tmp")], "a temp file was left behind"
    t = store.read()  # every file that is there reads whole
    assert t.num_rows >= before


#: the query docs/recording.md shows (any engine that reads hive-partitioned Parquet reads the store as is)
DUCKDB_QUERY = """
SELECT time, cluster, namespace, name, manager, changes
FROM read_parquet('{root}/objects/*/*/*/*.parquet', hive_partitioning = true)
WHERE cluster = 'prod' AND kind = 'Deployment' AND day BETWEEN '2026-11-01' AND '2026-11-02'
  AND manager = 'kubectl-edit' AND json_extract_string(changes, '$[0][0]') = 'spec.replicas'
ORDER BY time
LIMIT 3
"""


def test_duckdb_reads_the_store_as_is(tmp_path: Path) -> None:
    import duckdb

    store = Store(tmp_path)
    _write(store, 30)
    with store.writer("staging") as w:
        w.append(_row(12))
    rows = duckdb.sql(DUCKDB_QUERY.format(root=tmp_path)).fetchall()
    want = [_row(i) for i in range(7, 10)]
    assert [(r[0], r[1], r[3]) for r in rows] == [(w_["time"], "prod", w_["name"]) for w_ in want]
    assert json.loads(rows[0][5]) == [["spec.replicas", 6, 7]]
    n = duckdb.sql(
        f"SELECT count(*) FROM read_parquet('{tmp_path}/objects/*/*/*/*.parquet', hive_partitioning = true)"
    ).fetchall()
    assert n == [(31,)]


def test_latest_is_each_objects_newest_version_as_of_a_time(tmp_path: Path) -> None:
    store = Store(tmp_path)
    h = pd.Timedelta(hours=1)
    with store.writer("prod") as w:
        for uid, event, t, v in (
            ("a", "ADDED", T0, 1),
            ("a", "MODIFIED", T0 + 30 * h, 2),  # the next day: another partition
            ("b", "ADDED", T0, 1),
            ("b", "DELETED", T0 + h, 1),
            ("c", "ADDED", T0, 1),
            ("c", "GONE", T0 + 2 * h, None),
        ):
            obj = {"v": v} if v is not None else None
            w.append({"kind": "ConfigMap", "uid": uid, "event": event, "time": t, "object": obj})
    now = store.latest(clusters=["prod"])
    assert list(now["uid"]) == ["c", "b", "a"]  # by the time of their newest version, oldest first
    assert dict(zip(now["uid"], now["gone"], strict=True)) == {"a": False, "b": True, "c": True}
    assert [json.loads(o)["v"] for o in now["object"]] == [1, 1, 2]  # c: its last real version, not the GONE row
    then = store.latest(until=T0 + pd.Timedelta(minutes=90), columns=[])
    assert dict(zip(then["uid"], then["gone"], strict=True)) == {"a": False, "b": True, "c": False}
    assert "object" not in then.columns
    assert store.latest(clusters=["other"]).empty
