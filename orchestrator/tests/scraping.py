"""Scraping ``/metrics`` in tests: the samples by name and labels, read with prometheus_client's own parser."""

from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families

TOKEN = "test-metrics-token"


@dataclass(frozen=True)
class Scrape:
    families: dict[str, str]  # name -> type
    samples: dict[tuple[str, frozenset], float]

    def value(self, name: str, **labels: str) -> float:
        """A sample's value; 0 when the series is absent (a counter or gauge nothing recorded yet)."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)


def parse(text: str) -> Scrape:
    families, samples = {}, {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(families, samples)


def scrape(client, settings) -> Scrape:
    """GET /metrics as Prometheus does (bearer token), through the real URL conf and view."""
    settings.METRICS_TOKENS = [TOKEN]
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    return parse(response.content.decode())
