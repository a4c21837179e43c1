"""Running the trainings of ``tools/compare.py``: reuse finished runs, train the others in
this process or in a pool of one-thread child processes."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable

from ..job.reuse import finished_run


def run_one(argv: list[str], rerun: bool, in_process: bool) -> dict[str, Any]:
    """Train (or reuse) one run; in a child process with one thread when ``in_process`` is False."""
    summary = None if rerun else finished_run(argv)
    if summary is not None:
        return summary
    run_dir = Path(argv[argv.index("--output-dir") + 1])
    print(f"[compare] train.py {' '.join(argv)}", file=sys.stderr, flush=True)
    if in_process:
        from ..job.train import main as train_main

        train_main(argv)
    else:
        run_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        with open(run_dir / "train.log", "w") as log:
            done = subprocess.run([sys.executable, "-m", "tome_train.cli.train", *argv, "--threads", "1"],
                                  stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
        if done.returncode != 0:
            tail = (run_dir / "train.log").read_text().strip().splitlines()[-1:] or [""]
            raise ValueError(f"run {run_dir} failed (exit {done.returncode}): {tail[0]}")
    return json.loads((run_dir / "summary.json").read_text())


def run_all(
    first: list[list[str]],
    independent: list[list[str]],
    dependent: Callable[[int, dict[str, Any]], list[list[str]]],
    args: argparse.Namespace,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[list[dict[str, Any]]]]:
    """Run ``first``, ``independent`` and, for each finished run ``first[i]``, the runs
    ``dependent(i, its summary)``. With ``--jobs N`` > 1 all of them share one pool of N
    processes, so no worker idles while a budget-setting run is still going: a seed's
    dependent runs are queued as soon as its ``first`` run ends. Results come back in order.
    """
    if args.jobs <= 1:
        head = [run_one(argv, args.rerun, in_process=True) for argv in first]
        middle = [run_one(argv, args.rerun, in_process=True) for argv in independent]
        tail = [[run_one(argv, args.rerun, in_process=True) for argv in dependent(i, r)] for i, r in enumerate(head)]
        return head, middle, tail

    failures: list[BaseException] = []

    def train(argv: list[str]) -> dict[str, Any]:
        if failures:  # after one failure, queued runs are not started
            raise RuntimeError("skipped after an earlier failure")
        try:
            return run_one(argv, args.rerun, in_process=False)
        except BaseException as err:
            failures.append(err)
            raise

    pool = ThreadPoolExecutor(max_workers=args.jobs)
    try:
        head_f = [pool.submit(train, argv) for argv in first]
        middle_f = [pool.submit(train, argv) for argv in independent]
        tail_f: list[list[Future]] = [[] for _ in first]
        index = {f: i for i, f in enumerate(head_f)}
        for done in as_completed(head_f):
            i = index[done]
            tail_f[i] = [pool.submit(train, argv) for argv in dependent(i, done.result())]
        results = ([f.result() for f in head_f], [f.result() for f in middle_f],
                   [[f.result() for f in fs] for fs in tail_f])
    except BaseException as err:
        pool.shutdown(wait=True, cancel_futures=True)  # the runs in flight end; queued ones never start
        raise (failures[0] if failures else err) from None
    pool.shutdown()
    return results
