"""What runs inside a task's own process: the entrypoint a launched task starts with."""
