"""``python -m bench [--cases N] [--concurrency C] [--repeats R] [--db sqlite|postgres]``:
the assessment throughput benchmark (docs/benchmarks.md)."""

from __future__ import annotations

import sys

from bench.assessment_throughput import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
