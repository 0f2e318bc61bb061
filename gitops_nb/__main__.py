"""``python -m gitops_nb`` is the ``gitops-nb`` command."""

from .cli import main

raise SystemExit(main())
