#!/usr/bin/env python
"""Choose a training subset once (learned multi-metric selector, random, herding, k-center); see tome_train.cli.select."""
import importlib.machinery
import importlib.util
import os
import sys

# Every tool here runs with this folder first on sys.path, so `import select` (the standard
# library's, which subprocess needs) finds this file: put the real module in its place.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
if __name__ != "__main__":
    _spec = importlib.machinery.PathFinder.find_spec("select", sys.path)
    _real = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_real)
    sys.modules["select"] = _real
    globals().update({k: v for k, v in vars(_real).items() if not k.startswith("__")})
else:
    # The library of the checkout this tool sits in, whichever checkout the environment has installed.
    sys.path.insert(0, os.path.dirname(_HERE))
    from tome_train.cli.select import main

    raise SystemExit(main())
