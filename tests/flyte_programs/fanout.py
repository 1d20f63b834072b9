"""A parent that fans out to 10 sub-tasks in a group and sums what they return."""

import asyncio

import flyte

env = flyte.TaskEnvironment(name="fanout")


@env.task
async def square(x: int) -> int:
    print(f"squaring {x}", flush=True)
    return x * x


@env.task
async def main(n: int) -> int:
    with flyte.group("squares"):
        results = await asyncio.gather(*(square(i) for i in range(n)))
    return sum(results)


if __name__ == "__main__":
    flyte.init_from_config()
    run = flyte.run(main, n=10)
    print(run.url)
    run.wait()
