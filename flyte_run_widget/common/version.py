"""The package's version, in one place: the wheel's metadata (pyproject.toml reads it from here),
``flyte_run_widget.__version__``, ``flyte-run-widget --version`` and the running service's
``server.json`` all take it from this file."""

__version__ = "0.1.0"
