"""A parent that fans out to sub-tasks in a group; each sub-task leaves its process id in
``pid_dir``, says it is waiting, and returns only once the file ``gate`` exists."""

import asyncio
import os

import flyte

env = flyte.TaskEnvironment(name="gated_fanout")


def _note_pid(pid_dir: str, name: str) -> None:
    with open(os.path.join(pid_dir, name), "w") as f:
        f.write(str(os.getpid()))


@env.task
async def held(i: int, pid_dir: str, gate: str) -> int:
    _note_pid(pid_dir, f"child-{i}")
    print(f"child {i} is waiting for the gate", flush=True)
    while not os.path.exists(gate):
        await asyncio.sleep(0.05)  # polls a file another process creates: nothing to await
    return i


@env.task
async def main(n: int, pid_dir: str, gate: str) -> int:
    _note_pid(pid_dir, "parent")
    print(f"fanning out to {n}", flush=True)
    with flyte.group("held"):
        return sum(await asyncio.gather(*(held(i, pid_dir, gate) for i in range(n))))


if __name__ == "__main__":
    flyte.init_from_config()
    print(flyte.run(main, n=3, pid_dir=".", gate="open").url)
