"""How many examples a property test draws: its own count, scaled by PROPERTY_EXAMPLES_SCALE.

The README's test command draws each property's full count (scale 1). CI's second run, which measures
line coverage under tracing (about 2x slower), sets a smaller scale: coverage asks which lines run, and
the full-strength properties have just passed in the first run. A larger scale searches harder.
"""

from __future__ import annotations

import os

SCALE = float(os.environ.get("PROPERTY_EXAMPLES_SCALE", "1"))


def examples(count: int) -> int:
    """`count` examples at the scale set, at least one."""
    return max(1, round(count * SCALE))
