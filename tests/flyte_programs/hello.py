"""One task: the flyte SDK's hello world."""

import flyte

env = flyte.TaskEnvironment(name="hello_world")


@env.task
def main(name: str) -> str:
    print(f"saying hello to {name}", flush=True)
    return f"Hello, {name}!"


if __name__ == "__main__":
    flyte.init_from_config()
    run = flyte.run(main, name="World")
    print(run.url)
    run.wait()
