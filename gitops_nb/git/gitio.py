"""Low-level git I/O through GitPython's command interface.

Every history query is one streamed ``git`` process; object contents come from
one ``git cat-file --batch`` process per query, never one process per object.
"""

from __future__ import annotations

import enum
import queue
import subprocess
import threading
from collections.abc import Iterable, Iterator
from typing import IO, TYPE_CHECKING, Final

from ..errors import RepoError

if TYPE_CHECKING:
    import git

__all__ = ["GIT", "MISSING", "batch_read", "object_sizes", "read_blocks", "resolve_commits", "run", "stream_records"]

#: ``git`` with every setting that shapes the output we parse pinned, so a user's ``~/.gitconfig``
#: (signed-commit checks, decorations, prefixes, quoting, colours, encodings, rename detection)
#: cannot change our answers. Commands that need renames ask for them with ``-M``. The commit-graph
#: settings only make git faster (never change output): path queries use changed-path filters.
GIT = [
    "git",
    "-c", "log.showSignature=false",
    "-c", "log.decorate=false",
    "-c", "log.abbrevCommit=false",
    "-c", "log.showRoot=true",
    "-c", "log.follow=false",
    "-c", "log.date=default",
    "-c", "log.mailmap=false",
    "-c", "diff.noprefix=false",
    "-c", "diff.mnemonicPrefix=false",
    "-c", "diff.relative=false",
    "-c", "diff.renames=false",
    "-c", "diff.external=",
    "-c", "diff.srcPrefix=a/",
    "-c", "diff.dstPrefix=b/",
    "-c", "core.quotePath=true",
    "-c", "color.ui=false",
    "-c", "i18n.logOutputEncoding=UTF-8",
    "-c", "core.pager=cat",
    # a commit-graph (and its changed-path filters) is read when there is one, whatever the config says
    "-c", "core.commitGraph=true",
    "-c", "commitGraph.readChangedPaths=true",
]  # fmt: skip


class _Missing(enum.Enum):
    MISSING = enum.auto()


#: Returned by :func:`batch_read` for an object that is not in the object store.
MISSING: Final = _Missing.MISSING

_CHUNK = 1 << 20


def run(g: git.Git, args: list[str], *, path: str, check: bool = True) -> tuple[int, bytes, str]:
    """Run ``git <args>`` and return (status, stdout bytes, stderr text)."""
    status, out, err = g.execute(
        [*GIT, *args],
        with_extended_output=True,
        with_exceptions=False,
        stdout_as_string=False,
        strip_newline_in_stdout=False,
    )
    err_text = err.decode("utf-8", "replace") if isinstance(err, bytes) else str(err)
    if check and status != 0:
        raise RepoError(f"git {args[0]} failed in {path}: {err_text.strip() or f'exit {status}'}", path=path)
    return status, out, err_text


def stream_records(g: git.Git, args: list[str], *, path: str, sep: str = "\x1e") -> Iterator[str]:
    """Run ``git <args>`` and yield the text between ``sep`` markers as it streams in."""
    for block in read_blocks(g, args, path=path, sep=sep):
        yield from (rec for rec in block.split(sep) if rec)


def read_blocks(g: git.Git, args: list[str], *, path: str, sep: str = "\x1e") -> Iterator[str]:
    """Run ``git <args>`` and yield its output as text blocks that each end just before a ``sep``.

    A reader thread drains the pipe into a queue, so git keeps producing while the
    caller parses the previous block (git and the parser run on two cores).
    """
    proc = g.execute([*GIT, *args], as_process=True)
    popen: subprocess.Popen[bytes] | None = proc.proc
    assert popen is not None and popen.stdout is not None and popen.stderr is not None
    _grow_pipe(popen.stdout)
    chunks: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
    stderr_chunks: list[bytes] = []

    def drain() -> None:
        assert popen.stdout is not None
        while chunk := popen.stdout.read1(_CHUNK):  # type: ignore[attr-defined]
            chunks.put(chunk)
        chunks.put(None)

    reader = threading.Thread(target=drain, daemon=True)
    errs = threading.Thread(target=lambda: stderr_chunks.append(popen.stderr.read()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    errs.start()
    bsep = sep.encode()
    pending: list[bytes] = []
    try:
        while (chunk := chunks.get()) is not None:
            pending.append(chunk)
            if sum(map(len, pending)) < _CHUNK:
                continue
            buf = b"".join(pending)
            cut = buf.rfind(bsep)
            if cut <= 0:
                pending = [buf]
                continue
            pending = [buf[cut:]]
            yield buf[:cut].decode("utf-8", "replace")
        if pending and (rest := b"".join(pending)):
            yield rest.decode("utf-8", "replace")
    finally:
        reader.join()
        popen.stdout.close()
        status = popen.wait()
        errs.join()
    if status != 0:
        err = b"".join(stderr_chunks).decode("utf-8", "replace").strip()
        raise RepoError(f"git {args[0]} failed in {path}: {err or f'exit {status}'}", path=path)


def _grow_pipe(stream: IO[bytes]) -> None:
    """Ask for a 1 MiB pipe buffer (Linux), so git blocks less often on a busy reader."""
    try:
        import fcntl

        fcntl.fcntl(stream.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), _CHUNK)
    except (ImportError, OSError):
        pass


def batch_read(g: git.Git, names: Iterable[str], *, path: str) -> dict[str, bytes | _Missing]:
    """Read many objects with one ``git cat-file --batch``.

    ``names`` are object names in any form git accepts (``<sha>``, ``<rev>:<path>``).
    The result maps each name to its content, or to :data:`MISSING`.
    """
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    proc = g.execute([*GIT, "cat-file", "--batch"], as_process=True, istream=subprocess.PIPE)
    popen: subprocess.Popen[bytes] | None = proc.proc
    assert popen is not None
    out, err = popen.communicate(("\n".join(wanted) + "\n").encode())
    if popen.returncode != 0:
        raise RepoError(f"git cat-file failed in {path}: {err.decode('utf-8', 'replace').strip()}", path=path)
    result: dict[str, bytes | _Missing] = {}
    pos = 0
    for name in wanted:
        nl = out.index(b"\n", pos)
        header = out[pos:nl].split(b" ")
        pos = nl + 1
        if len(header) == 3 and header[2].isdigit():
            size = int(header[2])
            result[name] = out[pos : pos + size]
            pos += size + 1
        else:  # "<name> missing" or "<name> ambiguous"
            result[name] = MISSING
    return result


def _batch_check(g: git.Git, queries: list[str]) -> list[str]:
    """One ``git cat-file --batch-check`` over ``queries``: its output lines, one per query."""
    proc = g.execute([*GIT, "cat-file", "--batch-check"], as_process=True, istream=subprocess.PIPE)
    popen: subprocess.Popen[bytes] | None = proc.proc
    assert popen is not None
    out, _ = popen.communicate(("\n".join(queries) + "\n").encode())
    return out.decode("utf-8", "replace").splitlines()


def object_sizes(g: git.Git, names: Iterable[str], *, path: str) -> dict[str, int | None]:
    """The size in bytes of many objects with one ``git cat-file --batch-check``; ``None`` when missing."""
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    result: dict[str, int | None] = {}
    for name, line in zip(wanted, _batch_check(g, wanted), strict=False):
        parts = line.split()
        result[name] = int(parts[2]) if len(parts) == 3 and parts[2].isdigit() else None
    return result


def resolve_commits(g: git.Git, names: Iterable[str], *, path: str) -> dict[str, str | None]:
    """Resolve (abbreviated) commit names to full shas with one ``git cat-file --batch-check``.

    Names that are missing, ambiguous or not commits map to ``None``.
    """
    wanted = list(dict.fromkeys(names))
    if not wanted:
        return {}
    result: dict[str, str | None] = {}
    for name, line in zip(wanted, _batch_check(g, [f"{n}^{{commit}}" for n in wanted]), strict=False):
        parts = line.split()
        result[name] = parts[0] if len(parts) == 3 and parts[1] == "commit" else None
    return result
