"""Load testing a Dify chat app on one machine: ``chatapi load`` and its Python API.

::

    from chatapi.load import LoadConfig, LoadQuery, run_load

    report = run_load(LoadConfig(queries=[LoadQuery("Hi")], concurrency=50, duration=30,
                                 base_url="https://dify.example/v1", api_key="app-..."))
    print(report.metrics["ttft"]["p95"])

For more than one machine, see :mod:`chatapi.locust`.
"""

from ._config import LoadConfig, LoadQuery, read_queries
from ._engine import LoadError, ProgressSnapshot, arun_load, run_load
from ._fake import FakeServerProcess
from ._html import render_html
from ._stats import LoadReport

__all__ = [
    "FakeServerProcess",
    "LoadConfig",
    "LoadError",
    "LoadQuery",
    "LoadReport",
    "ProgressSnapshot",
    "arun_load",
    "read_queries",
    "render_html",
    "run_load",
]
