"""A task that runs until it is aborted, leaving its process id where $PID_FILE says."""

import asyncio
import os

import flyte

env = flyte.TaskEnvironment(name="sleeper")


@env.task
async def main(seconds: float) -> str:
    with open(os.environ["PID_FILE"], "w") as f:
        f.write(str(os.getpid()))
    print("sleeping", flush=True)
    await asyncio.sleep(seconds)
    return "woke up"


if __name__ == "__main__":
    flyte.init_from_config()
    run = flyte.with_runcontext(env_vars={"PID_FILE": "sleeper.pid"}).run(main, seconds=600.0)
    print(run.url)
