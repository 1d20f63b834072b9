"""A parent whose sub-tasks run until aborted, each leaving its process id in $PID_DIR."""

import asyncio
import os

import flyte

env = flyte.TaskEnvironment(name="sleepy_fanout")


@env.task
async def nap(i: int) -> int:
    with open(os.path.join(os.environ["PID_DIR"], f"child-{i}"), "w") as f:
        f.write(str(os.getpid()))
    await asyncio.sleep(600)
    return i


@env.task
async def main(n: int) -> int:
    with open(os.path.join(os.environ["PID_DIR"], "parent"), "w") as f:
        f.write(str(os.getpid()))
    with flyte.group("naps"):
        return sum(await asyncio.gather(*(nap(i) for i in range(n))))


if __name__ == "__main__":
    flyte.init_from_config()
    print(flyte.with_runcontext(env_vars={"PID_DIR": "."}).run(main, n=2).url)
