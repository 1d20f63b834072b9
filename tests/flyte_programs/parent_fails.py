"""A parent whose sub-task fails: the sub-task's error fails the parent."""

import flyte

env = flyte.TaskEnvironment(name="parent_fails")


@env.task
async def check(x: int) -> int:
    if x > 2:
        raise ValueError(f"{x} is more than 2")
    return x


@env.task
async def main(x: int) -> int:
    checked = await check(x)
    return checked + 1


if __name__ == "__main__":
    flyte.init_from_config()
    run = flyte.run(main, x=5)
    print(run.url)
    run.wait()
