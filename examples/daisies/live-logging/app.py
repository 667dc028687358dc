"""Live Logging: prints progress lines while it works."""

from __future__ import annotations

import logging
import math
import time

logger = logging.getLogger(__name__)

STEP_SECONDS = 0.5


def live_log_test(firstNumber: float, secondNumber: float, delay: float = 3) -> float:
    """Print a progress line about every half second for ``delay`` seconds, then add.

    Args:
        firstNumber: The first number.
        secondNumber: The second number.
        delay: How long to work, in seconds.

    Returns:
        The sum of the two numbers.
    """
    steps = max(1, math.ceil(delay / STEP_SECONDS))
    pause = max(0.0, delay) / steps
    logger.info("adding %s and %s over %s seconds", firstNumber, secondNumber, delay)
    for i in range(1, steps + 1):
        time.sleep(pause)
        print(f"Step {i}/{steps}: {i * pause:.1f} s elapsed")
    result = firstNumber + secondNumber
    print(f"Done: {firstNumber} + {secondNumber} = {result}")
    return result
