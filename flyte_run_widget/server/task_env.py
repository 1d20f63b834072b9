"""The environment a task process gets: what it inherits from the service, the run's and the
task's own variables, and how to reach the service back (for child actions), under the names
the flyte SDK's task runtime reads as well as this package's.

    env = task_env(os.environ, run_spec, details, reach, run_base)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flyteidl2.task import run_pb2
from flyteidl2.workflow import run_definition_pb2 as rd

# What a task inherits from the service: where programs, libraries and home are, and how to
# speak. Nothing else, so secrets in the service's environment (cloud credentials, the
# notebook's API key) stay out of tasks; a task says what else it needs (Task(env=...)).
_INHERITED = frozenset(
    [
        "PATH",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "TERM",
        "COLORTERM",
        "NO_COLOR",
        "FORCE_COLOR",
        "TZ",
        "TMPDIR",
        "LANG",
        "LANGUAGE",
        "PYTHONPATH",
        "VIRTUAL_ENV",
        "CONDA_PREFIX",
        "CONDA_DEFAULT_ENV",
        "LD_LIBRARY_PATH",
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "XDG_RUNTIME_DIR",
    ]
)

#: The service's token, for a task's calls back (QueueService, StateService) when it has one.
TOKEN_VAR = "FLYTE_RUN_WIDGET_TASK_TOKEN"


@dataclass(frozen=True)
class Reach:
    """How a task process reaches the service: ``host:port`` on loopback, plain text or TLS,
    and the token every call must carry (None without one)."""

    endpoint: str = ""
    tls: bool = False
    token: str | None = None


def inherited_env(environ: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in environ.items() if k in _INHERITED or k.startswith("LC_")}


def task_env(
    environ: Mapping[str, str],
    run_spec: run_pb2.RunSpec,
    details: rd.ActionDetails,
    reach: Reach,
    run_base: str,
) -> dict[str, str]:
    env = inherited_env(environ)
    # Python block-buffers stdout into a pipe, which would hold logs back until exit.
    env.setdefault("PYTHONUNBUFFERED", "1")
    env.update({kv.key: kv.value for kv in run_spec.envs.values})
    env.update({kv.key: kv.value for kv in details.task.task_template.container.env})
    rid = details.id.run
    # Set by the service, not the task: they say where this action is and where its children go.
    env.update(
        {
            "RUN_NAME": rid.name,
            "ACTION_NAME": details.id.name,
            "_U_RUN_BASE": run_base,
            "_U_ORG_NAME": rid.org or "local",  # the flyte runtime asserts a non-empty org
            "FLYTE_INTERNAL_EXECUTION_PROJECT": rid.project,
            "FLYTE_INTERNAL_EXECUTION_DOMAIN": rid.domain,
            "FSSPEC_FILE_AUTO_MKDIR": "true",  # local writes by the flyte runtime make their folders
            "DO_NOT_TRACK": "1",
        }
    )
    if reach.endpoint:
        env["_U_EP_OVERRIDE"] = reach.endpoint
        env["_U_INSECURE"] = "false" if reach.tls else "true"
    if reach.token:
        env[TOKEN_VAR] = reach.token
    return env
