"""The implementation of the ``chatapi`` subcommands, imported only when one runs (the
argument parsing lives in :mod:`chatapi.cli`)."""
