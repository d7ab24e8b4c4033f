"""Decoders against the vendors' own vectors (shared/vectors) and our examples files."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from decoders import MODELS, DecodeError, by_id, by_tts
from decoders.normalize import generic
from conftest import SHARED

VECTORS = json.loads((SHARED / "vectors" / "devices.json").read_text())
EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "decoders" / "examples"


def contains(actual, expected) -> bool:
    """The matching rule of shared/vectors/README.md."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and contains(actual[k], v) for k, v in expected.items())
    if isinstance(expected, list):
        return (isinstance(actual, list) and len(actual) == len(expected)
                and all(contains(a, e) for a, e in zip(actual, expected)))
    if isinstance(expected, (int, float)) and not isinstance(expected, bool):
        if isinstance(actual, bool) or not isinstance(actual, (int, float)):
            return False
        if expected == 0:
            return actual == 0
        return math.isclose(actual, expected, rel_tol=1e-6)
    return type(actual) is type(expected) and actual == expected


def test_the_matcher_can_fail():
    assert not contains({"a": {"value": 1.0}}, {"a": {"value": 1.1}})
    assert not contains({"a": "24.1"}, {"a": 24.1})
    assert not contains({}, {"a": None})
    assert contains({"a": 3, "extra": 1}, {"a": 3.0})


SUPPORTED = [v for v in VECTORS if by_id(f"{v['vendor']}/{v['model']}") is not None]


@pytest.mark.parametrize("vector", SUPPORTED,
                         ids=[f"{v['vendor']}/{v['model']}: {v['description']}" for v in SUPPORTED])
def test_vendor_vector(vector):
    model = by_id(f"{vector['vendor']}/{vector['model']}")
    payload = bytes.fromhex(vector["bytes_hex"])
    if vector["errors"]:
        with pytest.raises(DecodeError):
            model.decode(vector["f_port"], payload)
    else:
        assert contains(model.decode(vector["f_port"], payload), vector["expected"])


def test_dl_mbx_has_vendor_vectors():
    assert any(v["model"] == "dl-mbx" for v in SUPPORTED)


EXAMPLES = [
    (path.stem, example)
    for path in sorted(EXAMPLES_DIR.glob("*.json"))
    for example in json.loads(path.read_text())
]


@pytest.mark.parametrize("stem, example", EXAMPLES,
                         ids=[f"{s}: {e['description']}" for s, e in EXAMPLES])
def test_example(stem, example):
    model = next(m for m in MODELS if m.id.replace("/", "_").replace("-", "_") == stem)
    payload = bytes.fromhex(example["bytes_hex"])
    if "error" in example:
        with pytest.raises(DecodeError) as caught:
            model.decode(example["f_port"], payload)
        assert str(caught.value) == example["error"]
    else:
        decoded = model.decode(example["f_port"], payload)
        assert model.normalize(decoded, example.get("attributes", {})) == example["normalized"]


def test_every_model_has_an_examples_file_with_an_error_case():
    for model in MODELS:
        stem = model.id.replace("/", "_").replace("-", "_")
        examples = json.loads((EXAMPLES_DIR / f"{stem}.json").read_text())
        assert any("error" in e for e in examples), model.id


def test_lookup_by_tts_version_ids():
    assert by_tts("decentlab", "dl-mbx").id == "decentlab/dl-mbx"
    assert by_tts("decentlab", "no-such-model") is None
    assert by_tts(None, None) is None


def test_normaliser_accepts_what_tts_decoded():
    # TTS runs the vendor's decoder and delivers its output; it must land in the same series.
    model = by_id("decentlab/dl-mbx")
    ours = model.decode(1, bytes.fromhex("02012f000304d200010bb1"))
    theirs = json.loads(json.dumps(ours))
    geometry = {"distance_empty_m": 1.5, "distance_full_m": 0.2}
    assert model.normalize(theirs, geometry) == model.normalize(ours, geometry)


def test_generic_normaliser_keeps_numbers_under_vendor_names():
    values = generic({"Temp C": 21.5, "ok": True, "label": "x", "nan": float("nan"),
                      "nested": {"distance": {"value": 12, "unit": "mm"}}})
    assert values == {"temp_c": 21.5, "ok": 1.0, "nested_distance": 12.0}
