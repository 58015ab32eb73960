"""The project's detection taxonomy: the class names every shipped model uses, and their groups."""

from __future__ import annotations

from typing import Final

#: The model's class names, in the order the shipped models use. A model may add classes; it must
#: never rename these (issue 3).
TAXONOMY: Final[tuple[str, ...]] = (
    "car",
    "bus",
    "truck",
    "motorcycle",
    "bicycle",
    "person",
    "garbage",
    "garbage_bin",
    "bin_overflow",
    "sidewalk_clutter",
    "street_stall",
    "billboard",
    "signboard",
    "poster",
    "graffiti",
)


#: Classes that can be parked illegally.
VEHICLES: Final[frozenset[str]] = frozenset({"car", "bus", "truck", "motorcycle"})
#: Classes that evidence piled litter.
LITTER: Final[frozenset[str]] = frozenset({"garbage", "bin_overflow", "sidewalk_clutter"})
#: Classes that evidence outdoor advertising.
ADS: Final[frozenset[str]] = frozenset({"billboard", "signboard", "poster", "graffiti"})
#: Classes that evidence street vending.
VENDING: Final[frozenset[str]] = frozenset({"street_stall"})
