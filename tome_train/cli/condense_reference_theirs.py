"""Worker: time the reference DatasetCondensation code's iterations (one process per run).

Run by file path, never imported by the reference process as part of ``tome_train``
(so none of our modules is loaded beside the reference's), as::

    python condense_reference_theirs.py REF_COPY THREADS SCRIPT [reference args...]

``REF_COPY`` is the prepared copy of the reference folder (see
:mod:`tome_train.cli.condense_reference`). Two hooks are installed before the script
runs, both on the reference's own ``utils`` module, which its scripts import from:

* ``get_network`` records a timestamp before building each network. The script builds
  the matching network first thing in every iteration, so the time between two such
  calls is one whole iteration (real batches, augmentation, matching, image update, and
  for DC/DSA the inner loop);
* ``evaluate_synset`` is replaced by a no-op that records an ``eval`` event, so the
  evaluation at iteration 0 costs nothing and the evaluation network built for it is
  not mistaken for an iteration boundary.

torchvision is kept from downloading: a missing data set raises instead. The reference's
own output goes to stderr; stdout gets one JSON line with the per-iteration seconds.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import time
from contextlib import redirect_stdout
from pathlib import Path

HERE = Path(__file__).resolve().parent


def iteration_seconds(events: list[tuple[str, float]]) -> list[float]:
    """Seconds between consecutive training-network builds with no evaluation between them.

    ``events`` are ``("network", t)`` / ``("eval", t)`` in call order; a network build
    directly followed by an ``eval`` is an evaluation network, not an iteration start.
    """
    starts: list[float | None] = []
    for index, (kind, stamp) in enumerate(events):
        if kind == "eval":
            starts.append(None)  # an evaluation breaks the chain of iteration starts
        elif not (index + 1 < len(events) and events[index + 1][0] == "eval"):
            starts.append(stamp)
    return [b - a for a, b in zip(starts, starts[1:]) if a is not None and b is not None]


def _install_hooks(events: list[tuple[str, float]]) -> None:
    import torchvision.datasets as tv_datasets
    import utils  # the reference's utils.py (first on sys.path)

    def no_download(self) -> None:
        if not self._check_exists():
            raise RuntimeError(f"{type(self).__name__} not found under {self.raw_folder}; "
                               "this benchmark never downloads")

    tv_datasets.MNIST.download = no_download  # FashionMNIST inherits it

    build_network = utils.get_network

    def timed_get_network(*args, **kwargs):
        events.append(("network", time.perf_counter()))
        return build_network(*args, **kwargs)

    def skipped_evaluation(it_eval, net, images_train, labels_train, testloader, args):
        events.append(("eval", time.perf_counter()))
        return net, 0.0, 0.0

    utils.get_network = timed_get_network
    utils.evaluate_synset = skipped_evaluation


def main(argv: list[str]) -> int:
    reference, threads, script, *script_args = argv
    # Run by path, this file's folder is sys.path[0]: drop it so only the reference's modules resolve.
    sys.path[:] = [p for p in sys.path if p and Path(p).resolve() != HERE]
    sys.path.insert(0, reference)
    import torch

    torch.set_num_threads(int(threads))
    events: list[tuple[str, float]] = []
    _install_hooks(events)
    sys.argv = [script, *script_args]
    start = time.perf_counter()
    with redirect_stdout(sys.stderr):
        runpy.run_path(os.path.join(reference, script), run_name="__main__")
    seconds = iteration_seconds(events)
    print(json.dumps({"seconds": seconds, "process_s": time.perf_counter() - start,
                      "torch_threads": torch.get_num_threads()}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
