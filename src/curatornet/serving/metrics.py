"""The service's metrics in the Prometheus text format (prometheus-client), served at ``/metrics``.

- ``curatornet_http_requests_total{endpoint, method, status}``: requests answered,
  by route template (``/items/{item_id}``; ``unmatched`` for unknown paths),
  method and status, refusals by the gate (400, 401, 403, 413) included;
- ``curatornet_http_request_duration_seconds{endpoint}``: a latency histogram,
  from the request's arrival to the end of its answer;
- ``curatornet_catalogue_items`` and ``curatornet_items_known``: the catalogue's
  size and every item known (sold and removed ones too), as of the scrape;
- ``curatornet_model_info{model, model_id, training_sha256}``: 1 for the model
  served; ``curatornet_model_loaded_timestamp_seconds``;
  ``curatornet_model_reloads_total{outcome}``: reloads done and refused.

Each application has its own registry, so that several can live in one process.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder

from curatornet.serving.recommender import Recommender

#: Latency buckets, in seconds.
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: Methods counted by name; any other is counted as "other" (label values stay few).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
#: The text format's content type when a scraper asks for none in particular.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class _StateCollector:
    """What the recommender holds now: read at every scrape."""

    def __init__(self, recommender: Recommender):
        self.recommender = recommender

    def collect(self) -> Iterator[Metric]:
        recommender = self.recommender
        snap = recommender.snapshot()
        yield GaugeMetricFamily(
            "curatornet_catalogue_items", "Items in the catalogue (candidates for recommendation)", value=snap.size
        )
        yield GaugeMetricFamily(
            "curatornet_items_known", "Items the service knows, sold and removed ones included", value=snap.n
        )
        info = GaugeMetricFamily(
            "curatornet_model_info",
            "The model served (value 1): its kind, id (hash of its files) and training settings hash",
            labels=["model", "model_id", "training_sha256"],
        )
        info.add_metric([snap.model.name, snap.model.model_id, snap.model.training_hash], 1)
        yield info
        yield GaugeMetricFamily(
            "curatornet_model_loaded_timestamp_seconds",
            "When the model served was loaded (Unix time)",
            value=recommender.loaded_at,
        )
        reloads = CounterMetricFamily(
            "curatornet_model_reloads", "Model reloads (POST /admin/reload or SIGHUP) by outcome", labels=["outcome"]
        )
        for outcome, count in sorted(recommender.reloads.items()):
            reloads.add_metric([outcome], count)
        yield reloads


class ServiceMetrics:
    """The registry of one application; :meth:`observe` counts one request."""

    def __init__(self, recommender: Recommender):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "curatornet_http_requests",
            "HTTP requests answered, by endpoint (route template), method and status",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "curatornet_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by endpoint",
            ["endpoint"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_StateCollector(recommender))

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(endpoint, method if method in METHODS else "other", str(status)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """(the metrics, their content type): the format the scraper's Accept header asks for
        (OpenMetrics, or a newer text format), the classic text format by default."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
