"""The pure core shared by the program, the tools and the policy pack."""

from __future__ import annotations

import pytest

from core.paths import lookup
from core.regions import GCP_REGIONS, continent
from tools.offline import SECRET_SIG, SIG_KEY, is_secret


@pytest.mark.parametrize("location, expected", [
    ("us-central1", "north-america"), ("EUROPE-WEST1", "europe"), ("US", "north-america"), ("eur4", "europe"),
    ("me-central2", "middle-east"), ("mars-north1", "mars-north1"),
])
def test_continent_of_regions_and_multi_regions(location, expected):
    assert continent(location) == expected


def test_every_region_is_on_a_known_continent():
    assert set(GCP_REGIONS.values()) == {"africa", "asia", "australia", "europe", "middle-east", "north-america",
                                         "south-america"}


def test_lookup_walks_maps_and_lists_and_stops_at_secrets():
    secret = {SIG_KEY: SECRET_SIG, "value": "hunter2"}
    inputs = {"a": [{"b": 1}], "s": secret}
    assert lookup(inputs, "a.0.b") == 1
    assert lookup(inputs, "a.1.b", default="none") == "none"
    assert lookup(inputs, "s.value", stop=is_secret) is secret, "a secret is returned whole, never opened"
    assert lookup(inputs, "s.value") == "hunter2"
