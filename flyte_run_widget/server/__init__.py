"""The embedded Run service, a process of its own; each attempt's ``relay.py`` is one more."""
