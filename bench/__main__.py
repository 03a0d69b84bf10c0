"""``python -m bench [--cases N] [--concurrency C] [--repeats R] [--db sqlite|postgres]``: the
assessment throughput benchmark; ``python -m bench import [--plans N] ...``: importing a
council's caseload; ``python -m bench national ...``: the managers' lists and the statistics
at national scale (docs/benchmarks.md)."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    if sys.argv[1:2] == ["import"]:
        from bench.import_plans import main as import_main

        sys.exit(import_main(sys.argv[2:]))
    if sys.argv[1:2] == ["national"]:
        from bench.national import main as national_main

        sys.exit(national_main(sys.argv[2:]))
    from bench.assessment_throughput import main

    sys.exit(main(sys.argv[1:]))
