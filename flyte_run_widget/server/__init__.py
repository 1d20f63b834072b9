"""The embedded local Run service: Flyte's RunService and RunLogsService over gRPC, running
container tasks as local processes and keeping runs and logs in a data folder.

    endpoint = ensure_service(Path("~/.flyte-run-widget").expanduser())
    # or, in the foreground:  python -m flyte_run_widget.server --data-dir DIR
"""

from __future__ import annotations

from .app import serve, serve_async
from .launcher import default_data_dir, ensure_service, running_endpoint

__all__ = ["default_data_dir", "ensure_service", "running_endpoint", "serve", "serve_async"]
