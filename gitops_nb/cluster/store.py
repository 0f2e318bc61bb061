"""The recording store: append-only Parquet, hive-partitioned by cluster, kind and day.

Layout (an open format: DuckDB, Spark, Trino or pyarrow read it as it is)::

    <root>/objects/cluster=<cluster>/kind=<Kind>/day=<YYYY-MM-DD>/<writer-id>-<seq>.parquet
    <root>/_checkpoints/cluster=<cluster>/<kind>.json

``<root>`` is a local directory or ``s3://bucket/prefix``. Partition values are URI-encoded (a
context named ``arn:aws:eks:...:cluster/prod`` stays one path segment). One row per observed change of
one object; the columns are :data:`COLUMNS`.

Crash safety: a file is written whole under a hidden name (``.``-prefixed, which every Parquet engine
skips) and renamed into place (local), or PUT once (S3: an object appears whole or not at all), so a
reader never sees half a file and ``kill -9`` loses only the rows not yet flushed. Compaction and
retention make rows vanish and reappear atomically per file (see :meth:`Store.compact`): a row is never
visible twice.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import pandas as pd

from ..errors import InputError, StoreError, StoreFullError, StoreNotWritableError, StoreURLError
from ..times import now_utc, parse_at

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

__all__ = ["COLUMNS", "EVENTS", "PARTITIONS", "Store", "StoreWriter", "arrow_schema", "sanitize_object"]

#: the ``event`` column's values
EVENTS = ("ADDED", "MODIFIED", "DELETED", "RELISTED", "GONE")

#: the hive partition columns, outermost first (strings, in the path, not in the files)
PARTITIONS = ("cluster", "kind", "day")

#: Every column of the ``objects`` table: name -> (arrow type name, what it holds). The first three are
#: the hive partitions (in the path); the others are in each file, in this order.
COLUMNS: dict[str, tuple[str, str]] = {
    "cluster": ("string", "partition: the kube context name (or the name given) of the cluster recorded"),
    "kind": ("string", "partition: Application, Deployment, ReplicaSet, Event, Secret, or any managed kind"),
    "day": ("string", "partition: YYYY-MM-DD of `time` in UTC"),
    "api_version": ("string", "the object's apiVersion (apps/v1, argoproj.io/v1alpha1, v1)"),
    "namespace": ("string", "metadata.namespace; null for a cluster-scoped object"),
    "name": ("string", "metadata.name"),
    "uid": ("string", "metadata.uid"),
    "app": ("string", "the Argo CD Application managing the object (the app itself for kind=Application), else null"),
    "resource_version": ("string", "metadata.resourceVersion of the version recorded"),
    "event": ("string", "ADDED | MODIFIED | DELETED | RELISTED (changed while not watched) | GONE (missing on relist)"),
    "time": ("timestamp", "when the change happened as best known (watch receipt; relist time for RELISTED/GONE)"),
    "since": ("timestamp", "RELISTED/GONE: the last time the object was seen before (changed between since and time)"),
    "manager": ("string", "managedFields manager owning the changed fields, else null"),
    "manager_time": ("timestamp", "that managedFields entry's time, else null"),
    "changes": ("string", "JSON list of [path, old, new]; for Secrets [path, null, null]; [] for ADDED"),
    "object": ("string", "the object as JSON (managedFields kept; Secrets without data/stringData)"),
    "recorder": ("string", "the writer id (host-pid-start) that wrote the row"),
}
_DATA = [c for c in COLUMNS if c not in PARTITIONS]
_ROW_FIELDS = [c for c in _DATA if c != "recorder"] + ["kind"]
_LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def arrow_schema(*, partitions: bool = True) -> pa.Schema:
    """The ``objects`` table's pyarrow schema (with the partition columns first, or only the file's)."""
    import pyarrow as pa

    types = {"string": pa.string(), "timestamp": pa.timestamp("us", tz="UTC")}
    return pa.schema(
        [
            pa.field(c, types[t], nullable=c not in ("cluster", "kind", "day", "time", "event"), metadata={"doc": d})
            for c, (t, d) in COLUMNS.items()
            if partitions or c not in PARTITIONS
        ]
    )


def sanitize_object(kind: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object as stored: a Secret loses ``data``, ``stringData`` and the last-applied annotation
    (which holds the values); anything else is kept whole."""
    out = dict(obj)
    if kind == "Secret":
        out.pop("data", None)
        out.pop("stringData", None)
        meta = dict(out.get("metadata") or {})
        anns = {k: v for k, v in (meta.get("annotations") or {}).items() if k != _LAST_APPLIED}
        if "annotations" in meta:
            meta["annotations"] = anns
        out["metadata"] = meta
    return out


def _parse_keep(keep: str | pd.Timedelta) -> pd.Timedelta:
    if isinstance(keep, pd.Timedelta):
        td = keep
    else:
        try:
            td = pd.Timedelta(str(keep).strip())
        except ValueError as e:
            raise InputError(f"retention {keep!r} is not a duration: give e.g. '30d', '14d' or '12h'") from e
    if td <= pd.Timedelta(0):
        raise InputError(f"retention {keep!r} must be positive (e.g. '30d')")
    return td


def _ts_or_none(v: Any) -> pd.Timestamp | None:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return None
    return parse_at(v) if isinstance(v, str | datetime | pd.Timestamp) else parse_at(str(v))


class Store:
    """An append-only Parquet store of recorded cluster objects (local directory or ``s3://bucket/prefix``).

    For S3 the endpoint comes from ``$AWS_ENDPOINT_URL`` (or ``$AWS_ENDPOINT_URL_S3``), the credentials
    and region from the usual ``$AWS_*`` variables; they are never shown in a repr, a log or an error.
    """

    def __init__(self, url: str | os.PathLike[str]) -> None:
        import pyarrow.fs as pafs

        text = os.fspath(url)
        self.url = text
        self.endpoint: str | None = None
        if "://" in text and not text.startswith("file://"):
            parts = urlsplit(text)
            if parts.scheme != "s3":
                raise StoreURLError(
                    f"store URL scheme {parts.scheme!r} is not supported: give a directory or s3://bucket/prefix",
                    url=None,
                )
            if "@" in parts.netloc:
                raise StoreURLError(
                    "the store URL carries credentials: give s3://bucket/prefix and set AWS_ACCESS_KEY_ID / "
                    "AWS_SECRET_ACCESS_KEY in the environment instead",
                    url="s3://<redacted>",
                )
            if not parts.netloc:
                raise StoreURLError(f"store URL {text!r} names no bucket: give s3://bucket/prefix", url=text)
            self.fs: pafs.FileSystem = _s3_filesystem()
            self.endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            self.root = f"{parts.netloc}/{parts.path.strip('/')}".rstrip("/")
            self.local = False
        else:
            path = Path(text.removeprefix("file://")).expanduser().absolute()
            self.fs = pafs.LocalFileSystem()
            self.root = str(path)
            self.local = True
            self.url = str(path)

    def __repr__(self) -> str:
        where = f", endpoint={self.endpoint!r}" if self.endpoint else ""
        return f"Store({self.url!r}{where})"

    # -- paths ---------------------------------------------------------------------------

    def _objects(self) -> str:
        return f"{self.root}/objects"

    def partition_dir(self, cluster: str, kind: str, day: str) -> str:
        """The directory (or key prefix) of one partition."""
        return f"{self._objects()}/cluster={_enc(cluster)}/kind={_enc(kind)}/day={day}"

    def _checkpoint_path(self, cluster: str, kind: str) -> str:
        return f"{self.root}/_checkpoints/cluster={_enc(cluster)}/{_enc(kind)}.json"

    # -- low-level I/O: whole files only ---------------------------------------------------

    def put(self, path: str, data: bytes) -> None:
        """Write ``data`` as ``path`` whole: a hidden temp file fsynced and renamed (local), or one PUT (S3)."""
        try:
            if self.local:
                d, name = os.path.split(path)
                os.makedirs(d, exist_ok=True)
                tmp = os.path.join(d, f".{name}.{secrets.token_hex(4)}.tmp")
                try:
                    with open(tmp, "wb") as fh:
                        fh.write(data)
                        fh.flush()
                        os.fsync(fh.fileno())
                    os.replace(tmp, path)
                except BaseException:
                    with contextlib.suppress(OSError):
                        os.unlink(tmp)
                    raise
            else:
                with self.fs.open_output_stream(path) as out:  # one PutObject at close (delayed open)
                    out.write(data)
        except OSError as e:
            raise self._io_error(e, "write", path) from e

    def _io_error(self, e: OSError, verb: str, path: str) -> StoreError:
        where = f"cannot {verb} {path} in store {self.url}"
        if e.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(e):
            return StoreFullError(
                f"{where}: no space left on the device. Free space or give a larger --store; "
                "the rows not yet flushed are lost, everything flushed before is intact",
                url=self.url,
            )
        if (
            e.errno in (errno.EACCES, errno.EPERM, errno.EROFS)
            or "AccessDenied" in str(e)
            or "NoSuchBucket" in str(e)
            or "NO_SUCH_BUCKET" in str(e)
            or "Forbidden" in str(e)
        ):
            return StoreNotWritableError(
                f"{where}: {_short(e)}. Give a store the recorder may write (check permissions, "
                "a read-only mount, or that the bucket exists and the credentials may PUT to it)",
                url=self.url,
            )
        return StoreError(f"{where}: {_short(e)}", url=self.url)

    def check_writable(self) -> None:
        """Write and remove a probe file: a store that cannot be written fails here, before any watch."""
        probe = f"{self.root}/_probe-{_writer_id()}"
        if self.local:
            try:
                os.makedirs(self.root, exist_ok=True)
            except OSError as e:
                raise self._io_error(e, "create", self.root) from e
        self.put(probe, b"probe")
        with contextlib.suppress(OSError):
            self.fs.delete_file(probe)

    def _files(self, base: str) -> list[pafs.FileInfo]:
        """Every visible ``.parquet`` file under ``base`` (hidden and temp files skipped)."""
        import pyarrow.fs as pafs

        try:
            infos = self.fs.get_file_info(pafs.FileSelector(base, recursive=True, allow_not_found=True))
        except OSError as e:
            raise self._io_error(e, "list", base) from e
        return [
            i
            for i in infos
            if i.type == pafs.FileType.File
            and i.base_name.endswith(".parquet")
            and not i.base_name.startswith((".", "_"))
        ]

    # -- writing ---------------------------------------------------------------------------

    def writer(
        self, cluster: str, *, flush_seconds: float = 2.0, max_rows: int = 5000, max_buffer: int = 50_000
    ) -> StoreWriter:
        """A writer for one cluster's rows (checks first that the store can be written)."""
        self.check_writable()
        return StoreWriter(self, cluster, flush_seconds=flush_seconds, max_rows=max_rows, max_buffer=max_buffer)

    def write_rows(self, cluster: str, rows: Sequence[Mapping[str, Any]], *, recorder: str, seq: int) -> list[str]:
        """Write normalized rows as one file per (kind, day) partition; returns the paths written."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        parts: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
        for r in rows:
            parts.setdefault((r["kind"], r["day"]), []).append(r)
        file_schema = arrow_schema(partitions=False)
        written = []
        for (kind, day), rs in sorted(parts.items()):
            cols = {c: [r.get(c) for r in rs] for c in _DATA if c != "recorder"}
            cols["recorder"] = [recorder] * len(rs)
            table = pa.Table.from_pydict(cols, schema=file_schema)
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink, compression="zstd")
            path = f"{self.partition_dir(cluster, kind, day)}/{recorder}-{seq:08d}.parquet"
            self.put(path, sink.getvalue().to_pybytes())
            written.append(path)
        return written

    def save_checkpoint(self, cluster: str, kind: str, resource_version: str, *, recorder: str) -> None:
        body = {
            "cluster": cluster,
            "kind": kind,
            "resource_version": resource_version,
            "time": now_utc().isoformat(),
            "recorder": recorder,
        }
        self.put(self._checkpoint_path(cluster, kind), json.dumps(body).encode())

    def load_checkpoint(self, cluster: str, kind: str) -> dict[str, Any] | None:
        """The last checkpoint of ``(cluster, kind)``: resource_version, time, recorder; ``None`` if none."""
        path = self._checkpoint_path(cluster, kind)
        try:
            with self.fs.open_input_stream(path) as f:
                data = f.read()
        except FileNotFoundError:
            return None
        except OSError as e:
            if "NoSuchKey" in str(e) or "not found" in str(e).lower():
                return None
            raise self._io_error(e, "read", path) from e
        out: dict[str, Any] = json.loads(data)
        return out

    # -- reading ---------------------------------------------------------------------------

    def dataset(
        self,
        *,
        clusters: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        days: tuple[str | None, str | None] = (None, None),
    ) -> ds.Dataset:
        """The store as a pyarrow dataset (hive partitions; hidden and temp files skipped): all of it, or only
        the partitions of ``clusters``, ``kinds`` and the inclusive day range ``days`` (only their
        directories are listed: on S3 a narrow read lists a few prefixes, not the whole store)."""
        import pyarrow as pa
        import pyarrow.dataset as ds

        part = ds.partitioning(
            pa.schema([("cluster", pa.string()), ("kind", pa.string()), ("day", pa.string())]), flavor="hive"
        )
        if clusters is None and kinds is None and days == (None, None):
            files = [i.path for i in self._files(self._objects())]
        else:
            files = self._partition_files(clusters, kinds, days)
        return ds.dataset(
            files,
            schema=arrow_schema(),
            format="parquet",
            filesystem=self.fs,
            partitioning=part,
            partition_base_dir=self._objects(),
        )

    def _partition_files(
        self, clusters: Iterable[str] | None, kinds: Iterable[str] | None, days: tuple[str | None, str | None]
    ) -> list[str]:
        """The visible files of the partitions asked for, listing only their directories."""
        lo, hi = days

        def subdirs(base: str, key: str) -> list[str]:
            return [
                p.rsplit("/", 1)[1].partition("=")[2]
                for p in self._dirs(base)
                if p.rsplit("/", 1)[1].startswith(key + "=")
            ]

        out: list[str] = []
        cs = [_enc(c) for c in clusters] if clusters is not None else subdirs(self._objects(), "cluster")
        for c in cs:
            cdir = f"{self._objects()}/cluster={c}"
            ks = [_enc(k) for k in kinds] if kinds is not None else subdirs(cdir, "kind")
            for k in ks:
                kdir = f"{cdir}/kind={k}"
                for d in subdirs(kdir, "day"):
                    if (lo is None or d >= lo) and (hi is None or d <= hi):
                        out.extend(i.path for i in self._files(f"{kdir}/day={d}"))
        return out

    def _dirs(self, base: str) -> list[str]:
        import pyarrow.fs as pafs

        try:
            infos = self.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
        except OSError as e:
            raise self._io_error(e, "list", base) from e
        return [i.path for i in infos if i.type == pafs.FileType.Directory]

    def read(
        self,
        *,
        clusters: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        apps: Iterable[str] | None = None,
        since: Any = None,
        until: Any = None,
        columns: Sequence[str] | None = None,
        where: ds.Expression | None = None,
    ) -> pa.Table:
        """Rows matching the filters, as an Arrow table (all columns, or ``columns``), oldest first.

        The filters are pushed down: cluster, kind and the day range prune partitions (directories never
        opened), ``time`` and ``app`` prune row groups by their statistics. ``since``/``until`` take
        anything :func:`~gitops_nb.times.parse_at` does. ``where`` adds any pyarrow expression.
        """
        clusters = list(clusters) if clusters is not None else None
        kinds = list(kinds) if kinds is not None else None
        expr = self.filter(clusters=clusters, kinds=kinds, apps=apps, since=since, until=until)
        days = (
            parse_at(since).strftime("%Y-%m-%d") if since is not None else None,
            parse_at(until).strftime("%Y-%m-%d") if until is not None else None,
        )
        if where is not None:
            expr = where if expr is None else expr & where
        cols = list(columns) if columns is not None else None
        if cols is not None:
            unknown = [c for c in cols if c not in COLUMNS]
            if unknown:
                raise InputError(f"unknown store column(s) {unknown}: choose from {', '.join(COLUMNS)}")
        for attempt in range(3):  # a compaction or retention may remove a file between listing and reading
            try:
                with_time = cols if cols is None or "time" in cols else [*cols, "time"]
                t = self.dataset(clusters=clusters, kinds=kinds, days=days).to_table(columns=with_time, filter=expr)
                t = t.sort_by("time") if t.num_rows else t
                return t.select(cols) if cols is not None else t
            except FileNotFoundError:
                if attempt == 2:
                    raise
            except OSError as e:
                if attempt == 2 or "NoSuchKey" not in str(e):
                    raise self._io_error(e, "read", self._objects()) from e
        raise AssertionError("unreachable")  # pragma: no cover

    @staticmethod
    def filter(
        *,
        clusters: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        apps: Iterable[str] | None = None,
        since: Any = None,
        until: Any = None,
    ) -> ds.Expression | None:
        """The pyarrow expression of :meth:`read`'s filters (partitions first, then time and app)."""
        import pyarrow as pa
        import pyarrow.dataset as ds

        terms: list[ds.Expression] = []
        if clusters is not None:
            terms.append(ds.field("cluster").isin(list(clusters)))
        if kinds is not None:
            terms.append(ds.field("kind").isin(list(kinds)))
        lo = parse_at(since) if since is not None else None
        hi = parse_at(until) if until is not None else None
        if lo is not None:
            terms.append(ds.field("day") >= lo.strftime("%Y-%m-%d"))
            terms.append(ds.field("time") >= pa.scalar(lo.to_pydatetime(), pa.timestamp("us", tz="UTC")))
        if hi is not None:
            terms.append(ds.field("day") <= hi.strftime("%Y-%m-%d"))
            terms.append(ds.field("time") <= pa.scalar(hi.to_pydatetime(), pa.timestamp("us", tz="UTC")))
        if apps is not None:
            terms.append(ds.field("app").isin(list(apps)))
        if not terms:
            return None
        out = terms[0]
        for t in terms[1:]:
            out = out & t
        return out

    def last_versions(self, cluster: str, kind: str) -> dict[str, tuple[str, pd.Timestamp]]:
        """uid -> (resource_version, time) of the newest row of each object of ``kind`` that still exists
        as far as the store knows (objects whose last row is DELETED or GONE are left out), so a restarted
        recorder records only what changed since."""
        t = self.read(clusters=[cluster], kinds=[kind], columns=["uid", "resource_version", "time", "event"])
        if t.num_rows == 0:
            return {}
        df = t.to_pandas().sort_values("time", kind="stable").drop_duplicates("uid", keep="last")
        df = df[~df["event"].isin(["DELETED", "GONE"])]
        return {
            str(u): ("" if rv is None or pd.isna(rv) else str(rv), pd.Timestamp(tm))
            for u, rv, tm in zip(df["uid"], df["resource_version"], df["time"], strict=True)
        }

    def clusters(self) -> list[str]:
        """The clusters the store holds rows of (from the partition directories: no file is read)."""
        names = (p.rsplit("/", 1)[1] for p in self._dirs(self._objects()))
        return sorted(unquote(n.partition("=")[2]) for n in names if n.startswith("cluster="))

    def latest(
        self,
        *,
        clusters: Iterable[str] | None = None,
        kinds: Iterable[str] | None = None,
        apps: Iterable[str] | None = None,
        until: Any = None,
        where: ds.Expression | None = None,
        columns: Sequence[str] = ("object",),
    ) -> pd.DataFrame:
        """The newest row of each object ((cluster, uid)) at or before ``until``: what the store knew then.

        Columns ``cluster``, ``kind``, ``uid``, ``time``, ``event``, ``day``, ``gone`` (True when the object
        was deleted: its newest row is DELETED, or a GONE row came after it; its newest real version is
        still the row given), then ``columns``. Two passes, both pushed down: the newest version is found on
        those small columns, then ``columns`` (e.g. the large ``object``) are read only for those versions,
        only in their day partitions.
        """
        import pyarrow.dataset as ds

        base = ["cluster", "kind", "uid", "time", "event", "day"]
        extra = [c for c in columns if c not in base]
        kw: dict[str, Any] = {"clusters": clusters, "kinds": kinds, "apps": apps, "until": until}
        not_gone = ds.field("event") != "GONE"  # a GONE row says only that the object was missing
        rows: pd.DataFrame = self.read(
            **kw, columns=base, where=not_gone if where is None else where & not_gone
        ).to_pandas()
        last = rows.drop_duplicates(["cluster", "uid"], keep="last")  # read() is oldest first
        gone: pd.DataFrame = self.read(
            **kw, columns=["cluster", "uid", "time"], where=ds.field("event") == "GONE"
        ).to_pandas()
        if len(gone) and len(last):  # GONE after the newest version: deleted while the recorder was away
            newest = gone.groupby(["cluster", "uid"])["time"].max().rename("gone_at").reset_index()
            last = last.merge(newest, on=["cluster", "uid"], how="left")
            last = last.assign(gone=(last["event"] == "DELETED") | (last["gone_at"] > last["time"]))
            last = last.drop(columns=["gone_at"])
        else:
            last = last.assign(gone=last["event"] == "DELETED")
        if not extra:
            return last.reset_index(drop=True)
        return self.versions(last, extra)

    def versions(self, rows: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
        """``rows`` (each naming one version by ``cluster``, ``kind``, ``uid``, ``time`` and ``day``) with
        ``columns`` added, read only in those days for those uids; only the versions asked for become Python
        objects (they are matched in Arrow)."""
        import pyarrow as pa
        import pyarrow.dataset as ds

        extra = [c for c in columns if c not in rows.columns]
        if not len(rows):
            return rows.assign(**{c: pd.Series(dtype=object) for c in extra}).reset_index(drop=True)
        picked = ds.field("day").isin(sorted(set(rows["day"]))) & ds.field("uid").isin(sorted(set(rows["uid"])))
        table = self.read(
            clusters=sorted(set(rows["cluster"])),
            kinds=sorted(set(rows["kind"])),
            columns=["cluster", "uid", "time", *extra],
            where=picked,
        )
        on = ["cluster", "uid", "time"]
        keys = pa.Table.from_pandas(rows[on], preserve_index=False).cast(table.select(on).schema)
        body: pd.DataFrame = table.join(keys, keys=on, join_type="inner").to_pandas()
        body = body.drop_duplicates(on, keep="last")  # a row written twice (never expected) counts once
        return rows.merge(body, on=on, how="left").reset_index(drop=True)

    def partitions(self) -> list[tuple[str, str, str, list[str]]]:
        """(cluster, kind, day, [files]) of every partition holding visible files."""
        out: dict[tuple[str, str, str], list[str]] = {}
        base = self._objects() + "/"
        for info in self._files(self._objects()):
            rel = info.path[len(base) :].split("/")
            if len(rel) != 4:
                continue
            vals = [unquote(seg.partition("=")[2]) for seg in rel[:3]]
            out.setdefault((vals[0], vals[1], vals[2]), []).append(info.path)
        return [(c, k, d, sorted(f)) for (c, k, d), f in sorted(out.items())]

    # -- maintenance -----------------------------------------------------------------------

    def retain(self, keep: str | pd.Timedelta, *, now: pd.Timestamp | None = None) -> int:
        """Drop whole day partitions older than ``keep`` (``"30d"``); returns how many were dropped.

        A day is dropped when all of it is older than ``now - keep``. Locally each partition directory is
        first renamed to a hidden name (it vanishes at once for every reader), then removed.
        """
        td = _parse_keep(keep)
        cutoff = ((now or now_utc()) - td).strftime("%Y-%m-%d")
        if self.local:  # what an earlier run left between hiding a day and removing it
            for leftover in Path(self._objects()).glob("*/*/.dropped-*"):
                self.fs.delete_dir(str(leftover))
        dropped = 0
        for cluster, kind, day, _files in self.partitions():
            if day >= cutoff:
                continue
            d = self.partition_dir(cluster, kind, day)
            try:
                if self.local:
                    hidden = f"{os.path.dirname(d)}/.dropped-{day}-{secrets.token_hex(4)}"
                    os.rename(d, hidden)
                    self.fs.delete_dir(hidden)
                else:
                    self.fs.delete_dir(d)
            except OSError as e:
                raise self._io_error(e, "remove", d) from e
            dropped += 1
        return dropped

    def compact(self, *, min_files: int = 2, progress: Callable[[str], None] | None = None) -> int:
        """Merge each partition's small files into one; returns how many partitions were compacted.
        ``progress`` gets a line per partition (as the sandbox's and the runbooks' progress do).

        No row is ever visible twice: the merged file is written under a hidden name first; the sources
        are then renamed to hidden names (local; deleted on S3), and only then the merged file renamed
        (or copied) into place. Between those steps the partition's rows are briefly absent (local: the
        renames take microseconds), never doubled. A crash in between leaves the hidden merged file and
        a journal (``_compaction/``), and the next ``compact()`` completes or undoes it.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.recover()
        todo = [p for p in self.partitions() if len(p[3]) >= min_files]
        done = 0
        for i, (cluster, kind, day, files) in enumerate(todo):
            if progress is not None:
                progress(
                    f"compacting {i + 1}/{len(todo)}: cluster={cluster} kind={kind} day={day} ({len(files)} files)"
                )
            tables = []
            for f in files:
                try:
                    with self.fs.open_input_file(f) as fh:
                        tables.append(pq.read_table(fh, schema=arrow_schema(partitions=False)))
                except OSError as e:
                    raise self._io_error(e, "read", f) from e
            merged = pa.concat_tables(tables).sort_by([("time", "ascending")])
            sink = pa.BufferOutputStream()
            pq.write_table(merged, sink, compression="zstd")
            d = self.partition_dir(cluster, kind, day)
            name = f"compact-{_writer_id()}-00000000.parquet"
            hidden = f"{d}/.{name}.pending"
            self.put(hidden, sink.getvalue().to_pybytes())
            journal = f"{self.root}/_compaction/{name}.json"
            self.put(journal, json.dumps({"dir": d, "target": name, "sources": files}).encode())
            self._finish(d, name, files)
            with contextlib.suppress(OSError):
                self.fs.delete_file(journal)
            done += 1
        if progress is not None:
            progress(f"compacted {done} partition(s)")
        return done

    def _finish(self, d: str, name: str, sources: Sequence[str]) -> None:
        """Hide (or delete) the sources, then publish the merged file, then remove the hidden sources."""
        hidden = f"{d}/.{name}.pending"
        gone = []
        for s in sources:
            if not self._exists(s):
                continue
            if self.local:
                tomb = f"{os.path.dirname(s)}/.{os.path.basename(s)}.compacted"
                os.rename(s, tomb)
                gone.append(tomb)
            else:
                self.fs.delete_file(s)
        if self._exists(hidden):
            self.fs.move(hidden, f"{d}/{name}") if self.local else self.fs.copy_file(hidden, f"{d}/{name}")
            if not self.local:
                self.fs.delete_file(hidden)
        for t in gone:
            with contextlib.suppress(OSError):
                self.fs.delete_file(t)

    def recover(self) -> None:
        """Complete compactions a crash interrupted (their journals under ``_compaction/``)."""
        import pyarrow.fs as pafs

        base = f"{self.root}/_compaction"
        infos = self.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True))
        for info in infos:
            if not info.base_name.endswith(".json"):
                continue
            with self.fs.open_input_stream(info.path) as f:
                j = json.loads(f.read())
            self._finish(j["dir"], j["target"], j["sources"])
            if self.local:  # leftovers of a crash between hiding and removing the sources
                for s in j["sources"]:
                    tomb = f"{os.path.dirname(s)}/.{os.path.basename(s)}.compacted"
                    with contextlib.suppress(OSError):
                        os.unlink(tomb)
            self.fs.delete_file(info.path)

    def _exists(self, path: str) -> bool:
        import pyarrow.fs as pafs

        return bool(self.fs.get_file_info(path).type == pafs.FileType.File)


class StoreWriter:
    """Buffers rows of one cluster and writes them in small batches (one file per kind and day).

    A background thread flushes every ``flush_seconds`` or when ``max_rows`` rows wait. ``append``
    blocks while ``max_buffer`` rows wait (backpressure: a slow store slows the watches, memory stays
    bounded). A failed flush (disk full, not writable) is raised by the next ``append``/``flush``/``close``.
    """

    def __init__(
        self, store: Store, cluster: str, *, flush_seconds: float = 2.0, max_rows: int = 5000, max_buffer: int = 50_000
    ) -> None:
        if not cluster:
            raise InputError("a writer needs the cluster's name (the kube context, or any name given)")
        if max_rows < 1 or max_buffer < max_rows:
            raise InputError(f"need 1 <= max_rows <= max_buffer (got max_rows={max_rows}, max_buffer={max_buffer})")
        self.store = store
        self.cluster = cluster
        self.recorder = _writer_id()
        self.flush_seconds = flush_seconds
        self.max_rows = max_rows
        self.max_buffer = max_buffer
        self.rows_written = 0
        self.files_written = 0
        self._buf: list[dict[str, Any]] = []
        self._checkpoints: dict[str, str] = {}
        self._seq = 0
        self._error: StoreError | None = None
        self._closed = False
        self._cond = threading.Condition()
        self._io = threading.Lock()  # one flush at a time
        self._thread = threading.Thread(target=self._loop, name=f"store-writer-{cluster}", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"StoreWriter({self.store!r}, cluster={self.cluster!r}, recorder={self.recorder!r})"

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pending(self) -> int:
        """Rows buffered, not yet written."""
        return len(self._buf)

    def append(self, row: Mapping[str, Any]) -> None:
        """Buffer one row (the columns of :data:`COLUMNS` but ``cluster``, ``day`` and ``recorder``).

        Blocks while ``max_buffer`` rows wait; raises the error of a failed flush.
        """
        r = _normalize(row)
        with self._cond:
            while len(self._buf) >= self.max_buffer and self._error is None and not self._closed:
                self._cond.notify_all()
                self._cond.wait(0.5)
            self._raise()
            if self._closed:
                raise StoreError(f"{self!r} is closed: open a new writer", url=self.store.url)
            self._buf.append(r)
            if len(self._buf) >= self.max_rows:
                self._cond.notify_all()

    def checkpoint(self, kind: str, resource_version: str) -> None:
        """Remember a watch's resourceVersion; saved after the rows buffered before it are written."""
        with self._cond:
            self._checkpoints[kind] = str(resource_version)

    def flush(self) -> None:
        """Write every buffered row now (one file per kind and day), then the checkpoints."""
        with self._io:
            with self._cond:
                self._raise()
                rows, self._buf = self._buf, []
                cps, self._checkpoints = self._checkpoints, {}
                self._cond.notify_all()
            try:
                if rows:
                    self._seq += 1
                    paths = self.store.write_rows(self.cluster, rows, recorder=self.recorder, seq=self._seq)
                    self.rows_written += len(rows)
                    self.files_written += len(paths)
                for kind, rv in cps.items():
                    self.store.save_checkpoint(self.cluster, kind, rv, recorder=self.recorder)
            except Exception as e:  # any failure stops the writer loudly: never a silently dead thread
                err = (
                    e
                    if isinstance(e, StoreError)
                    else StoreError(
                        f"writing a batch to {self.store.url} failed: {type(e).__name__}: {e}", url=self.store.url
                    )
                )
                with self._cond:
                    self._error = err
                    self._cond.notify_all()
                if err is e:
                    raise
                raise err from e

    def close(self) -> None:
        """Flush what is buffered and stop the background thread; raises a flush's error."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        self.flush()

    def _raise(self) -> None:
        if self._error is not None:
            raise type(self._error)(str(self._error), url=self._error.url)

    def _loop(self) -> None:
        deadline = time.monotonic() + self.flush_seconds
        while True:
            with self._cond:
                while (
                    not self._closed
                    and len(self._buf) < self.max_rows
                    and time.monotonic() < deadline
                    and self._error is None
                ):
                    self._cond.wait(max(0.0, deadline - time.monotonic()))
                if self._closed or self._error is not None:
                    return
            with contextlib.suppress(StoreError):  # kept in self._error, raised to the caller
                self.flush()
            deadline = time.monotonic() + self.flush_seconds


def _normalize(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row as stored: times as UTC, ``changes``/``object`` as JSON text, Secrets without values."""
    unknown = set(row) - set(_ROW_FIELDS) - {"cluster", "day", "recorder"}
    if unknown:
        raise InputError(f"unknown column(s) {sorted(unknown)} in a store row: the columns are {', '.join(COLUMNS)}")
    kind = row.get("kind")
    if not kind:
        raise InputError("a store row needs its object's kind")
    event = row.get("event")
    if event not in EVENTS:
        raise InputError(f"a store row's event must be one of {', '.join(EVENTS)}, not {event!r}")
    t = _ts_or_none(row.get("time"))
    if t is None:
        raise InputError("a store row needs its time (when the change was seen)")
    out = {c: row.get(c) for c in _ROW_FIELDS}
    out["time"] = t.to_pydatetime()
    for c in ("since", "manager_time"):
        v = _ts_or_none(row.get(c))
        out[c] = v.to_pydatetime() if v is not None else None
    obj = row.get("object")
    if obj is not None and not isinstance(obj, Mapping | str):
        raise InputError(f"a store row's object must be a dict or JSON text, not {type(obj).__name__}")
    if isinstance(obj, Mapping):
        out["object"] = json.dumps(sanitize_object(str(kind), obj), separators=(",", ":"), default=str)
    elif isinstance(obj, str) and kind == "Secret":
        out["object"] = json.dumps(sanitize_object("Secret", json.loads(obj)), separators=(",", ":"))
    changes = row.get("changes")
    if changes is None:
        changes = []
    if not isinstance(changes, str):
        if kind == "Secret":  # that a key changed, never a value
            changes = [[c[0], None, None] for c in changes]
        changes = json.dumps(list(changes), separators=(",", ":"), default=str)
    out["changes"] = changes
    for c in ("api_version", "namespace", "name", "uid", "app", "resource_version", "manager"):
        if out[c] is not None:
            out[c] = str(out[c])
    out["day"] = t.strftime("%Y-%m-%d")
    return out


def _enc(value: str) -> str:
    """A partition value as one path segment (URI-encoded: ``/`` and ``=`` cannot break the layout)."""
    return quote(str(value), safe="")


def _short(e: OSError) -> str:
    return str(e).splitlines()[0][:300] if str(e) else type(e).__name__


_START = time.strftime("%Y%m%dT%H%M%S", time.gmtime())


def _writer_id() -> str:
    """host-pid-start-random: unique per writer, readable when debugging a duplicate."""
    host = "".join(ch if ch.isalnum() or ch in "-" else "-" for ch in socket.gethostname())[:40] or "host"
    return f"{host}-{os.getpid()}-{_START}-{secrets.token_hex(3)}"


def _s3_filesystem() -> pafs.S3FileSystem:
    """pyarrow's S3 client from the environment; credentials are passed through, never kept or shown."""
    import pyarrow.fs as pafs

    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    kw: dict[str, Any] = {
        "region": os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        "connect_timeout": 5,
        "request_timeout": 30,
        "allow_delayed_open": True,  # a small file is one PutObject at close: it appears whole or not at all
    }
    if endpoint:
        parts = urlsplit(endpoint)
        kw["endpoint_override"] = parts.netloc or parts.path
        kw["scheme"] = parts.scheme or "https"
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        kw["access_key"] = os.environ["AWS_ACCESS_KEY_ID"]
        kw["secret_key"] = os.environ["AWS_SECRET_ACCESS_KEY"]
        if os.environ.get("AWS_SESSION_TOKEN"):
            kw["session_token"] = os.environ["AWS_SESSION_TOKEN"]
    try:
        return pafs.S3FileSystem(**kw)
    except (OSError, ValueError) as e:
        raise StoreURLError(f"cannot configure S3 from the environment: {str(e)[:300]}", url=None) from e
