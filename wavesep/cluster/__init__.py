"""Separation and evaluation of many tracks over a Ray cluster (``--ray [ADDRESS]``).

Modules: :mod:`~wavesep.cluster.pool` (a pool of Ray actors, one per worker, fed a stream of
tracks, retrying the tracks of a worker that dies), :mod:`~wavesep.cluster.separate` (the
separation worker and the driver side of ``wavesep-separate --ray``),
:mod:`~wavesep.cluster.evaluate` (the same for ``wavesep-evaluate --ray``).

Only the driver touches the output folder: workers return the encoded output files (stems, or a
track's museval JSON), which the driver writes atomically. For separation the workers also
receive the input files' bytes, so they need no shared file system; for evaluation they read the
dataset at the driver's paths (a shared file system or the same copy on every node).

May import: the top-level modules (api, audio, checkpoint, atomic, errors) and, lazily in the
evaluation worker, wavesep.evaluation. Ray comes with the ``ray`` extra (``pip install -e
".[ray]"``); nothing in wavesep imports this package except the command lines, and only when
``--ray`` is given.
"""
