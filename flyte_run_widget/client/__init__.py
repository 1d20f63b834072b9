"""The caller's side, in the notebook's process: loop, config, gRPC client, streams, local service."""
