"""Separation and evaluation of many tracks over a Ray cluster (``--ray [ADDRESS]``).

Modules: :mod:`~wavesep.cluster.pool` (a pool of Ray actors, one per worker, fed a stream of
tracks, retrying the tracks of a worker that dies), :mod:`~wavesep.cluster.separate` (the
separation worker and the driver side of ``wavesep-separate --ray``).

Only the driver touches the output folder: workers receive the input files' bytes and return
the encoded output files, which the driver writes atomically, so the workers need no shared file
system. Ray comes with the ``ray`` extra (``pip install -e ".[ray]"``); nothing else in wavesep
imports this package except the command lines, and only when ``--ray`` is given.
"""
