"""The CPU allocator tuning is safe to call and leaves results unchanged."""

import os
import subprocess
import sys

import pytest

from tome_train import allocator


def _run(code: str, **env: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_applies_once_and_reports_the_outcome():
    code = ("from tome_train.allocator import tune_cpu_allocator as t; a = t(); b = t(); "
            "assert a == b; print(a)")
    out = _run(code)
    if sys.platform.startswith("linux"):
        assert out in ("True", "False")  # False only on a C library without mallopt
    else:
        assert out == "False"


def test_environment_opt_out():
    code = "from tome_train.allocator import tune_cpu_allocator as t; print(t())"
    assert _run(code, TOME_TRAIN_SYSTEM_MALLOC="1") == "False"


def test_threshold_validated():
    saved = allocator._tuned
    allocator._tuned = None
    try:
        with pytest.raises(ValueError, match="threshold"):
            allocator.tune_cpu_allocator(0)
    finally:
        allocator._tuned = saved


def test_same_tensors_with_and_without_tuning():
    code = ("import torch; from tome_train.allocator import tune_cpu_allocator as t; t(); torch.manual_seed(0); "
            "net = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.ReLU(), torch.nn.Flatten(), "
            "torch.nn.LazyLinear(10)); x = torch.randn(64, 3, 32, 32); net(x).sum().backward(); "
            "print(float(net[0].weight.grad.double().sum()).hex())")
    assert _run(code) == _run(code, TOME_TRAIN_SYSTEM_MALLOC="1")
