"""``python -m chatapi``: the ``chatapi`` command."""

from .cli import main

raise SystemExit(main())
