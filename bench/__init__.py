"""exigo-sync's benchmark harness: `make bench` (sizes: `make bench BENCH_SIZES=small`).

    python -m bench run [--sizes tiny|small|full] [--only batch/h10M,...] [--rerun]
    python -m bench report [--sizes ...]        # re-render the report from saved results

Measures what BENCHMARKS.md reports (see bench/report.py for what each section means): a batch
of N changes merged into history of M rows (bench.run), the hand-written SCD2 floor
(bench.floor), a full-table `dbt snapshot` (bench.snapshot), a no-change batch through the flow
and as a bare `dbt build`, that build again with fewer nodes (`layers`: no tests, no marts,
staging alone), the initial load, simulator generation; and EXPLAIN ANALYZE of the largest
batch's merge statements (bench.profile). The report ends with what bounds each target missed,
and the hand-written reading in bench/analysis.md.

Everything it builds is cached under bench/.work/ (git-ignored; `--work-dir` or BENCH_WORK_DIR
to move it): simulators and warehouses per size, and one result file per figure, so an
interrupted run resumes. `--sizes full` writes BENCHMARKS.md at the repository root; other sizes
write bench/.work/BENCHMARKS-<sizes>.md.
"""
