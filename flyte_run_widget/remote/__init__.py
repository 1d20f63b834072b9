"""The ``flyte.remote`` mirror: Run, launching, literals, log lines, in the notebook's process."""
