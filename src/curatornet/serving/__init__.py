"""Serving trained models without TensorFlow.

- :mod:`curatornet.serving.models`: CuratorNet and VBPR forward passes in NumPy,
  loaded from a model directory, and scorers with the
  :class:`~curatornet.models.base.Scorer` interface.
- :mod:`curatornet.serving.data`: the data folder as serving needs it (items,
  embeddings, purchase histories, the inventory at the end of the log) and the
  check that a model belongs to that catalogue.
- :mod:`curatornet.serving.index`: exact and approximate (faiss) maximum inner
  product search over item vectors.
- :mod:`curatornet.serving.topk`: batch top-k for every user of the purchase log.
- :mod:`curatornet.serving.store`, :mod:`curatornet.serving.recommender`,
  :mod:`curatornet.serving.app`: the recommendation service (SQLite catalogue,
  in-memory snapshots and model reloads, FastAPI application);
  :mod:`curatornet.serving.gate` (trusted hosts, write token, body limit,
  access log), :mod:`curatornet.serving.metrics` (Prometheus),
  :mod:`curatornet.serving.responses` (the JSON error shape) and
  :mod:`curatornet.serving.server` (settings, start-up checks, SIGHUP, uvicorn).

Nothing here imports TensorFlow; a test checks it.
"""
