"""Google Cloud regions and the continent each is on: the one table the program, tools and policy pack use."""

from __future__ import annotations

# Google Cloud regions, by continent. Buckets, key rings and jobs live in one region;
# a replica must sit on another continent than its source for the plan's US -> EU copy.
GCP_REGIONS: dict[str, str] = {
    "africa-south1": "africa",
    "asia-east1": "asia",
    "asia-east2": "asia",
    "asia-northeast1": "asia",
    "asia-northeast2": "asia",
    "asia-northeast3": "asia",
    "asia-south1": "asia",
    "asia-south2": "asia",
    "asia-southeast1": "asia",
    "asia-southeast2": "asia",
    "australia-southeast1": "australia",
    "australia-southeast2": "australia",
    "europe-central2": "europe",
    "europe-north1": "europe",
    "europe-north2": "europe",
    "europe-southwest1": "europe",
    "europe-west1": "europe",
    "europe-west2": "europe",
    "europe-west3": "europe",
    "europe-west4": "europe",
    "europe-west6": "europe",
    "europe-west8": "europe",
    "europe-west9": "europe",
    "europe-west10": "europe",
    "europe-west12": "europe",
    "me-central1": "middle-east",
    "me-central2": "middle-east",
    "me-west1": "middle-east",
    "northamerica-northeast1": "north-america",
    "northamerica-northeast2": "north-america",
    "northamerica-south1": "north-america",
    "southamerica-east1": "south-america",
    "southamerica-west1": "south-america",
    "us-central1": "north-america",
    "us-east1": "north-america",
    "us-east4": "north-america",
    "us-east5": "north-america",
    "us-south1": "north-america",
    "us-west1": "north-america",
    "us-west2": "north-america",
    "us-west3": "north-america",
    "us-west4": "north-america",
}
# Multi-regions and predefined dual-regions, by the continent they stay on.
MULTI_REGIONS = {"us": "north-america", "nam4": "north-america", "eu": "europe", "eur4": "europe",
                 "asia": "asia", "asia1": "asia"}


def continent(location: str) -> str:
    """The continent of a region or multi-region (case-insensitive); the location itself when unknown."""
    name = str(location).lower()
    return GCP_REGIONS.get(name) or MULTI_REGIONS.get(name) or name
