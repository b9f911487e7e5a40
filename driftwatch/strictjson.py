"""JSON that every parser accepts: no ``Infinity`` / ``NaN`` tokens.

Python's json module writes non-finite floats as ``Infinity`` and ``NaN``, which are not JSON
(RFC 8259): ``jq``, JavaScript's ``JSON.parse`` and strict parsers reject the whole document. A
non-finite number (a threshold that can never be crossed, a statistic on an empty column) is
written as ``null`` instead; the fields that carry it say what null means.
"""

from __future__ import annotations

import json
import math
from typing import Any


def finite(value: Any) -> Any:
    """``value`` with every non-finite float (at any depth) replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """json.dumps of ``finite(value)``, refusing any non-finite number that is left."""
    return json.dumps(finite(value), allow_nan=False, default=str, **kwargs)
