"""Parameter descriptions read from docstrings, for the endpoint schema (no server)."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support.daisi_folders import make_daisi

from daisi_async.server.registry import load_daisi
from daisi_async.server.registry.docstrings import param_descriptions


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        pytest.param(
            "F.\n\nArgs:\n    a (int): A,\n        on two lines.\n    **kw: Named.\n\n"
            "Keyword Arguments:\n    k: K.\n\nReturns:\n    int: r\n",
            {"a": "A, on two lines.", "kw": "Named.", "k": "K."},
            id="google",
        ),
        pytest.param(
            "F.\n\nParameters\n----------\nalpha : float\n    Alpha.\nbeta, *gamma : int\n"
            "    Both.\n\nOther Parameters\n----------------\ndelta\n    Delta.\n",
            {"alpha": "Alpha.", "beta": "Both.", "gamma": "Both.", "delta": "Delta."},
            id="numpy",
        ),
        pytest.param(
            "F.\n\n:param int x: X,\n    continued.\n:keyword y: Y.\n:returns: nothing\n",
            {"x": "X, continued.", "y": "Y."},
            id="rest",
        ),
        pytest.param("F.\n\n@param a: A.\n@type a: int\n", {"a": "A."}, id="epydoc"),
        pytest.param(
            "F.\n\nArgs:\n    a: A.\n\n:param b: B.\n", {"a": "A.", "b": "B."}, id="mixed-styles"
        ),
        pytest.param("F.\n\nArgs:\n    a:\n    b: B.\n", {"b": "B."}, id="empty-description"),
        pytest.param("Just prose: no parameters.\n", {}, id="prose"),
        pytest.param("F.\n\nArgs:\n  :::\n\n:param:\n@param\n", {}, id="malformed"),
    ],
)
def test_param_descriptions(doc: str, expected: dict[str, str]) -> None:
    assert param_descriptions(doc) == expected


def test_descriptions_reach_the_schema(tmp_path: Path) -> None:
    source = '''
def predict(features, threshold=0.5):
    """Predict.

    @param features: The inputs.
    @param threshold: The cut-off.
    """
'''
    spec = load_daisi(make_daisi(tmp_path, "d", {"app.py": source}))
    schema = spec.endpoints["predict"].to_json()["schema"]
    assert [(p["id"], p["description"]) for p in schema] == [
        ("features", "The inputs."),
        ("threshold", "The cut-off."),
    ]
