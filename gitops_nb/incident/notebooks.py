"""The notebooks and runbooks this package ships, and running a notebook headless.

In a wheel, ``notebooks/`` and ``runbooks/`` are package data (``gitops_nb/notebooks``,
``gitops_nb/runbooks``, mapped from the repository's top-level folders at build time); in a
checkout they are read where they are. Either way :func:`data_dir` finds them through
:mod:`importlib.resources`.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import InputError, NotebookError

__all__ = ["copy_notebooks", "data_dir", "notebooks_dir", "run_notebook", "runbooks_dir"]


def data_dir(name: str) -> Path:
    """The shipped folder ``name`` (``notebooks`` or ``runbooks``): in the installed package, or the checkout's."""
    packaged = resources.files("gitops_nb").joinpath(name)
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(__file__).resolve().parents[2] / name
    if checkout.is_dir():
        return checkout
    raise InputError(f"this installation of gitops-nb has no {name}/ folder: reinstall it from a wheel or a checkout")


def notebooks_dir() -> Path:
    """The folder holding the notebooks (``what_changed.ipynb``, ...)."""
    return data_dir("notebooks")


def runbooks_dir() -> Path:
    """The folder holding the runbooks (``*.yaml`` and their ``*.md`` procedures)."""
    return data_dir("runbooks")


def copy_notebooks(dest: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Copy the shipped notebooks into ``dest`` (to open in JupyterLab). Existing files are kept unless
    ``overwrite``; returns the files written."""
    out = Path(dest)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for nb in sorted(notebooks_dir().glob("*.ipynb")):
        target = out / nb.name
        if target.exists() and not overwrite:
            continue
        shutil.copyfile(nb, target)
        written.append(target)
    return written


def run_notebook(
    name: str, output: Path, parameters: dict[str, Any], *, html: bool = True, cwd: Path | None = None
) -> Path:
    """Execute the shipped notebook ``name`` headless with papermill into ``output``.

    With ``html``, also export ``output`` as HTML with the code hidden (the report).
    """
    import papermill as pm

    src = notebooks_dir() / f"{name}.ipynb"
    if not src.exists():
        raise InputError(
            f"no notebook {src}: known notebooks are {', '.join(p.stem for p in notebooks_dir().glob('*.ipynb'))}"
        )
    output.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(
            str(src),
            str(output),
            parameters=parameters,
            kernel_name="python3",
            cwd=str(cwd or output.parent),
            progress_bar=False,
        )
    except pm.PapermillExecutionError as e:
        raise NotebookError(
            f"notebook {name} failed in cell {e.exec_count} with {e.ename}: {e.evalue}. "
            f"The executed notebook up to the failure is {output}; fix the cause and run again",
            notebook=str(output),
            cell=e.exec_count,
            ename=e.ename,
            evalue=e.evalue,
        ) from e
    if html:
        import nbformat
        from nbconvert import HTMLExporter

        exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
        body, _ = exporter.from_notebook_node(nbformat.read(str(output), as_version=4))
        output.with_suffix(".html").write_text(body)
    return output
