"""A task that needs a secret."""

import os

import flyte

env = flyte.TaskEnvironment(name="secret", secrets=[flyte.Secret(key="api-key", as_env_var="API_KEY")])


@env.task
def main() -> int:
    return len(os.environ["API_KEY"])


if __name__ == "__main__":
    flyte.init_from_config()
    print(flyte.run(main).url)
