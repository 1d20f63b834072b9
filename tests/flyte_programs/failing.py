"""A task that raises: the run fails with the task's error."""

import flyte

env = flyte.TaskEnvironment(name="failing")


@env.task
def main(x: int) -> int:
    print("checking x", flush=True)
    if x < 10:
        raise ValueError(f"x is {x}, it must be at least 10")
    return x


if __name__ == "__main__":
    flyte.init_from_config()
    run = flyte.run(main, x=3)
    print(run.url)
    run.wait()
