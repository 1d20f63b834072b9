"""A parent on CPU whose sub-task asks for a GPU."""

import flyte

cpu = flyte.TaskEnvironment(name="gpu_child_parent")
gpu = flyte.TaskEnvironment(name="gpu_child", resources=flyte.Resources(gpu=1))


@gpu.task
async def train(x: int) -> int:
    return x


@cpu.task
async def main(x: int) -> int:
    return await train(x)


if __name__ == "__main__":
    flyte.init_from_config()
    print(flyte.run(main, x=1).url)
