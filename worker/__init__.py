"""The Temporal worker: runs the workflows and their activities."""
