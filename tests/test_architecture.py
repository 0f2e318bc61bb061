"""The layout's rules, checked: no import cycles, layers import only downwards, no reaching into
another module's private names, every error pickles."""

from __future__ import annotations

import ast
import pickle
from pathlib import Path

import pytest

import gitops_nb
from gitops_nb import errors

PKG = Path(gitops_nb.__file__).resolve().parent
#: each subpackage and the layers it may import (core modules are importable by all)
LAYERS = {
    "git": set(),
    "cluster": set(),
    "investigate": {"git", "cluster"},
    "act": {"git", "cluster"},
    "incident": {"git", "cluster", "investigate", "act"},
    "ui": {"git", "cluster", "investigate", "act", "incident", "sandbox"},
    "sandbox": {"git", "cluster", "act"},  # the demo reset resumes self-heal
}
#: private names of other libraries we use on purpose
ALLOWED_PRIVATE = {
    "_from_arrays",  # pandas' array constructor: the fast path of schema.frame (with a public fallback)
    "_repr_mimebundle_",  # IPython's display protocol
}


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG.parent).with_suffix("")
        name = ".".join(rel.parts).removesuffix(".__init__")
        mods[name] = p
    return mods


def _imports(name: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The package modules ``name`` imports at run time (imports under TYPE_CHECKING excluded)."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(x)
        for n in ast.walk(tree)
        if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
        for b in n.body
        for x in ast.walk(b)
    }
    base = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{parent}.{node.module}" if node.module else parent
            else:
                target = node.module or ""
            cands = [target, *(f"{target}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            cands = [a.name for a in node.names]
        else:
            continue
        out |= {c for c in cands if c in mods and c != name}
    return out


def test_no_import_cycles() -> None:
    mods = _modules()
    edges = {m: _imports(m, p, mods) for m, p in mods.items()}
    # a package's __init__ re-exporting its children is not a cycle
    plain = {
        m: {t for t in ts if mods[t].name != "__init__.py"} for m, ts in edges.items() if mods[m].name != "__init__.py"
    }
    cycles = []

    def visit(n: str, stack: list[str], seen: set[str]) -> None:
        for t in plain.get(n, ()):
            if t in stack:
                cycles.append(" -> ".join([*stack[stack.index(t) :], t]))
            elif t not in seen:
                seen.add(t)
                visit(t, [*stack, t], seen)

    for m in plain:
        visit(m, [m], set())
    assert not cycles, "import cycles: " + "; ".join(sorted(set(cycles)))


def test_layers_import_only_downwards() -> None:
    mods = _modules()
    wrong = []
    for m, p in mods.items():
        parts = m.split(".")
        if len(parts) < 3 or parts[1] not in LAYERS:
            continue
        for t in _imports(m, p, mods):
            tp = t.split(".")
            if len(tp) >= 2 and tp[1] in LAYERS and tp[1] != parts[1] and tp[1] not in LAYERS[parts[1]]:
                wrong.append(f"{m} imports {t}")
    assert not wrong, wrong


def test_no_module_touches_another_modules_private_names() -> None:
    found = []
    for p in PKG.rglob("*.py"):
        for n in ast.walk(ast.parse(p.read_text())):
            if isinstance(n, ast.Attribute) and n.attr.startswith("_") and not n.attr.startswith("__"):
                if isinstance(n.value, ast.Name) and n.value.id in ("self", "cls"):
                    continue
                if n.attr not in ALLOWED_PRIVATE:
                    found.append(f"{p.relative_to(PKG)}:{n.lineno} {ast.unparse(n)}")
            if isinstance(n, ast.ImportFrom):
                found += [
                    f"{p.relative_to(PKG)}:{n.lineno} imports {a.name}"
                    for a in n.names
                    if a.name.startswith("_") and not a.name.startswith("__")
                ]
    assert not found, found


def test_the_cycle_check_catches_a_cycle(tmp_path: Path) -> None:
    """The check above is not vacuous: two modules importing each other are reported."""
    (tmp_path / "a.py").write_text("from .b import x\n")
    (tmp_path / "b.py").write_text("from .a import y\n")
    mods = {"p.a": tmp_path / "a.py", "p.b": tmp_path / "b.py"}
    assert _imports("p.a", mods["p.a"], mods) == {"p.b"} and _imports("p.b", mods["p.b"], mods) == {"p.a"}


ERRORS = [getattr(errors, n) for n in errors.__all__]


@pytest.mark.parametrize("cls", ERRORS, ids=lambda c: c.__name__)
def test_every_error_pickles_with_its_attributes(cls: type[errors.GitOpsNbError]) -> None:
    kw = {
        "NotebookError": {"notebook": "out/x.ipynb", "cell": 3, "ename": "ValueError", "evalue": "bad"},
        "ConvergenceError": {"app": "web", "revision": "a" * 40},
        "UnknownRevisionError": {"path": "/r", "rev": "nope"},
    }.get(cls.__name__, {})
    if issubclass(cls, errors.ClusterError):
        kw = {"context": "prod", "resource": "applications.argoproj.io/web", "verb": "get", "status": 404}
    elif issubclass(cls, errors.RepoError) and not kw:
        kw = {"path": "/r"}
    err = cls("what happened and what to do", **kw)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and str(back) == str(err) and back.__dict__ == err.__dict__
    assert isinstance(back, errors.GitOpsNbError)


def test_convergence_error_is_not_an_action_error() -> None:
    """ActionError promises nothing was changed; a convergence failure comes after a push."""
    assert not issubclass(errors.ConvergenceError, errors.ActionError)
    assert issubclass(errors.ConvergenceError, errors.GitOpsNbError)
