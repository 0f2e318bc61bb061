"""``python -m gitops_nb`` is the ``gitops-nb`` command."""

from .ui.cli import main

raise SystemExit(main())
