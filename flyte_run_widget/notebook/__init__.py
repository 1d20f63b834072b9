"""The notebook widget, its log batching and display hooks, in the Jupyter kernel process."""
