"""The training job that ``tools/train.py`` runs, as a library.

* :mod:`.args`: its arguments (the parser) and their data-set dependent defaults;
* :mod:`.data_args`: augmentation flags and image-folder defaults;
* :mod:`.model` and :mod:`.checks`: the model, its loss and FLOPs baseline, and the checks
  made before any data loads;
* :mod:`.train`: :func:`~tome_train.job.train.main` (argument list and extra engine hooks
  in, summary out) and :func:`~tome_train.job.train.run`;
* :mod:`.reuse`: a finished run with the same training is reused instead of trained again.

Library code that trains as the tool does (the scoring runner, the comparison tools) calls
:func:`~tome_train.job.train.main`; ``tome_train.cli.train`` only adds the exit codes.
"""
