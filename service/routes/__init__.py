"""The HTTP routes of the case service, one module per resource."""

from __future__ import annotations

from typing import Final

#: The version prefix of every API path.
API_PREFIX: Final = "/api/v1"
