"""``python -m cnnbook ...`` is the ``cnnbook`` command."""

from .cli import main

raise SystemExit(main())
