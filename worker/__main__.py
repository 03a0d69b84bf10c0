"""``python -m worker``: the same as ``ehc worker``, leaving as every ``ehc`` command does."""

from cli.main import run

run(["worker"])
