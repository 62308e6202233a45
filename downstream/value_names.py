"""The names of the matrix's values besides the protocols': transferability scores, their cost, their layer.

``transferability/<score>`` is a score of the backbone's features, ``transferability/<score>@layer<k>``
the same score of stage k's pooled features, and ``seconds/<score>`` the time the first took.
"""

import re

#: The protocols that train a classifier and record its per-example test losses.
TRAINED_PROTOCOLS = ("finetune", "linear", "logistic")
SCORE_PREFIX = "transferability/"
SECONDS_PREFIX = "seconds/"
_LAYER = re.compile(r"^transferability/(?P<score>[a-z_0-9]+)@layer(?P<stage>\d+)$")


def score_name(score: str) -> str:
    return f"{SCORE_PREFIX}{score}"


def seconds_name(score: str) -> str:
    return f"{SECONDS_PREFIX}{score}"


def layer_score_name(score: str, stage: int) -> str:
    return f"{SCORE_PREFIX}{score}@layer{stage}"


def is_protocol_value(name: str) -> bool:
    """A protocol's own value (an accuracy, LogME, a layer's probe), not a score, its cost or its layer."""
    return not name.startswith((SCORE_PREFIX, SECONDS_PREFIX))


def scored(name: str) -> str | None:
    """The score of ``transferability/<score>``; None for any other name."""
    if name.startswith(SCORE_PREFIX) and "@" not in name:
        return name.removeprefix(SCORE_PREFIX)
    return None


def layer_of(name: str) -> tuple[str, int] | None:
    """``(score, stage)`` of ``transferability/<score>@layer<k>``; None for any other name."""
    found = _LAYER.match(name)
    return (found["score"], int(found["stage"])) if found else None
