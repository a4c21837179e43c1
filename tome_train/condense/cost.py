"""What condensation costs, in the units a pruning run is charged in.

Every image passed through a network is counted by kind: a forward pass, a backward
pass (about two forwards), and a backward through a backward (gradient matching's
second-order term, counted as two backwards). Multiplied by the forward GFLOPs of
one image, this gives a figure comparable with the training ledger's
``samples x forward GFLOPs x 3``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from tome_train.flops import TrainingFlopsLedger

BACKWARD_FORWARDS = 2.0  # one backward ~ two forwards (input and weight gradients)
DOUBLE_BACKWARD_FORWARDS = 4.0  # back-propagating through a backward graph ~ two backwards


@dataclass
class CostMeter:
    """Per-image pass counts through the matching (or trained) networks."""

    forward_samples: int = 0
    backward_samples: int = 0
    double_backward_samples: int = 0

    def forward(self, n: int) -> None:
        self.forward_samples += int(n)

    def forward_backward(self, n: int) -> None:
        self.forward_samples += int(n)
        self.backward_samples += int(n)

    def double_backward(self, n: int) -> None:
        self.double_backward_samples += int(n)

    def forward_equivalents(self) -> float:
        return (self.forward_samples + BACKWARD_FORWARDS * self.backward_samples
                + DOUBLE_BACKWARD_FORWARDS * self.double_backward_samples)

    def record(self, ledger: TrainingFlopsLedger, gflops_per_sample: float, wall_s: float) -> None:
        """Rows of kind ``condense`` in a FLOPs ledger: forward-only, forward + backward, and the
        second-order passes, with their forward-equivalents per sample (wall time on the first)."""
        parts = [(self.forward_samples - self.backward_samples, 1.0),
                 (self.backward_samples, 1.0 + BACKWARD_FORWARDS),
                 (self.double_backward_samples, DOUBLE_BACKWARD_FORWARDS)]
        for index, (samples, passes) in enumerate(p for p in parts if p[0] > 0):
            ledger.record("condense", samples=int(samples), forward_gflops=gflops_per_sample,
                          wall_s=wall_s if index == 0 else 0.0, passes=passes)

    def summary(self, gflops_per_sample: float, seconds: float) -> dict[str, float]:
        return {
            **asdict(self),
            "forward_gflops_per_sample": gflops_per_sample,
            "gflops": self.forward_equivalents() * gflops_per_sample,
            "seconds": seconds,
        }
