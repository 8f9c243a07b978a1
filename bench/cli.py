"""`python -m bench run|report`: see bench/__init__.py."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from pathlib import Path

from bench import machine, procs
from bench.sizes import PRESETS, resolve
from bench.workspace import DEFAULT_WORK_DIR, REPO_ROOT, Workspace


def _output(args: argparse.Namespace, work: Path) -> Path:
    if args.output:
        return Path(args.output)
    # Only the sizes write the repository's BENCHMARKS.md.
    return (
        REPO_ROOT / "BENCHMARKS.md"
        if args.sizes == "full"
        else work / f"BENCHMARKS-{args.sizes}.md"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("run", "report"):
        p = sub.add_parser(name)
        p.add_argument(
            "--sizes", default=os.environ.get("BENCH_SIZES") or "full", choices=list(PRESETS)
        )
        p.add_argument(
            "--work-dir",
            type=Path,
            default=Path(os.environ.get("BENCH_WORK_DIR") or DEFAULT_WORK_DIR),
        )
        p.add_argument(
            "--output", default=None, help="report path (default: BENCHMARKS.md for full)"
        )
        p.add_argument("--history", default=None, help="history sizes, e.g. 100k,1M")
        p.add_argument("--batches", default=None, help="batch sizes, e.g. 1k,10k")
        p.add_argument("--runs", type=int, default=None, help="runs per figure under a minute")
    run = sub.choices["run"]
    run.add_argument("--only", default="", help="comma-separated figure prefixes, e.g. batch/h10M")
    run.add_argument("--rerun", action="store_true", help="measure the selected figures again")
    args = parser.parse_args(argv)

    sizes = resolve(args.sizes, history=args.history, batches=args.batches, runs=args.runs)
    ws = Workspace(args.work_dir.resolve())
    ws.setup()
    from bench import report

    if args.command == "run":
        from bench.run import Bench, log, run_all

        bench = Bench(ws, sizes, only=tuple(o for o in args.only.split(",") if o), rerun=args.rerun)
        session = {
            "started": datetime.now().isoformat(timespec="seconds"),
            "load_start": procs.loadavg(),
            "argv": sys.argv[1:] if argv is None else argv,
        }
        try:
            run_all(bench)
        finally:
            session.update(
                ended=datetime.now().isoformat(timespec="seconds"),
                load_end=procs.loadavg(),
                measured=bench.measured,
            )
            meta = ws.load_result(f"{sizes.name}/meta") or {"sessions": []}
            meta.update(
                machine=machine.machine(), versions=machine.versions(), sizes=sizes.__dict__
            )
            if bench.measured:
                meta["sessions"].append(session)
            ws.save_result(f"{sizes.name}/meta", meta)
        log(f"measured {len(bench.measured)} figure(s)")
    out = _output(args, ws.root)
    out.write_text(report.render(ws, sizes))
    print(f"report written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
