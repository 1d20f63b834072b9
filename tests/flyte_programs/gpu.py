"""A task that asks for a GPU."""

import flyte

env = flyte.TaskEnvironment(name="gpu", resources=flyte.Resources(gpu=1))


@env.task
def main() -> int:
    return 1


if __name__ == "__main__":
    flyte.init_from_config()
    print(flyte.run(main).url)
