"""``litecls bulk``: classify or embed a collection of images on Ray Data, into Parquet.

One idea per module: :mod:`sources` (what to read), :mod:`adapters` (classify or embed: load,
prepare, invoke, columns), :mod:`pipeline` (the Ray Data graph: an actor pool of LiteRT
interpreters that read, decode and invoke), :mod:`writer` (atomic Parquet parts, resume, one row per input),
:mod:`cluster` (a local Ray or a cluster, quietly) and :mod:`job` (the run from start to end).

Needs the ``ray`` extra: ``pip install 'litecls[ray]'``.
"""
