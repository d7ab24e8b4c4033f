"""Decoders against the vendors' own vectors (tests/data/vectors, a copy of shared/vectors) and
our examples files."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from decoders import MODELS, DecodeError, by_id, by_tts
from decoders.normalize import generic, is_vocabulary
from fixtures_data import DATA

VECTORS = json.loads((DATA / "vectors" / "devices.json").read_text())
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


def extra_keys(actual, expected, path: str = "") -> list[str]:
    """Keys in our output that the vendor's published output does not have, as paths."""
    found = []
    if isinstance(actual, dict) and isinstance(expected, dict):
        for key, value in actual.items():
            if key not in expected:
                found.append(f"{path}/{key}")
            else:
                found += extra_keys(value, expected[key], f"{path}/{key}")
    elif isinstance(actual, list) and isinstance(expected, list):
        for i, (a, e) in enumerate(zip(actual, expected)):
            found += extra_keys(a, e, f"{path}[{i}]")
    return found


def test_extra_keys_finds_an_invented_key():
    assert extra_keys({"a": {"value": 1, "unit": None}, "b": [{"c": 1}]},
                      {"a": {"value": 1}, "b": [{}]}) == ["/a/unit", "/b[0]/c"]


DATA_VECTORS = [v for v in SUPPORTED if not v["errors"]]


@pytest.mark.parametrize("vector", DATA_VECTORS,
                         ids=[f"{v['vendor']}/{v['model']}: {v['description']}"
                              for v in DATA_VECTORS])
def test_no_key_the_vendor_does_not_emit(vector):
    # The vector rule allows extra keys; a user comparing our decoded output with the TTS
    # console's would still see a key the vendor's decoder never writes as ours, so we add none.
    model = by_id(f"{vector['vendor']}/{vector['model']}")
    decoded = model.decode(vector["f_port"], bytes.fromhex(vector["bytes_hex"]))
    assert extra_keys(decoded, vector["expected"]) == []


def test_dl_mbx_has_vendor_vectors():
    assert any(v["model"] == "dl-mbx" for v in SUPPORTED)


def stem(model_id: str) -> str:
    return model_id.replace("/", "_").replace("-", "_")


EXAMPLES = [
    (model, example)
    for model in MODELS
    for example in json.loads((EXAMPLES_DIR / f"{stem(model.id)}.json").read_text())
]
DATA_EXAMPLES = [(m, e) for m, e in EXAMPLES if "error" not in e]


def example_id(pair) -> str:
    model, example = pair
    return f"{model.id}: {example['description']}"


@pytest.mark.parametrize("model, example", EXAMPLES, ids=map(example_id, EXAMPLES))
def test_example(model, example):
    payload = bytes.fromhex(example["bytes_hex"])
    if "error" in example:
        with pytest.raises(DecodeError) as caught:
            model.decode(example["f_port"], payload)
        assert str(caught.value) == example["error"]
        return
    decoded = model.decode(example["f_port"], payload)
    if "decoded" in example:
        assert contains(decoded, example["decoded"]), decoded
    if "normalized" in example:
        assert model.normalize(decoded, example.get("attributes", {})) == example["normalized"]


@pytest.mark.parametrize("model, example", DATA_EXAMPLES, ids=map(example_id, DATA_EXAMPLES))
def test_round_trip(model, example):
    decoded = model.decode(example["f_port"], bytes.fromhex(example["bytes_hex"]))
    f_port, payload = model.encode(decoded)
    assert model.decode(f_port, payload) == decoded


@pytest.mark.parametrize("model, example", DATA_EXAMPLES, ids=map(example_id, DATA_EXAMPLES))
def test_normalised_metrics_are_vocabulary(model, example):
    decoded = model.decode(example["f_port"], bytes.fromhex(example["bytes_hex"]))
    values = model.normalize(decoded, example.get("attributes", {}))
    unknown = [m for m in values if not is_vocabulary(m)]
    assert not unknown, f"not in decoders/normalize.py METRICS: {unknown}"
    assert all(v is None or (isinstance(v, float) and math.isfinite(v)) for v in values.values())


def test_every_model_has_examples_with_an_error_case():
    for model in MODELS:
        examples = json.loads((EXAMPLES_DIR / f"{stem(model.id)}.json").read_text())
        assert any("error" in e for e in examples), model.id
        assert any("normalized" in e for e in examples), model.id


@pytest.mark.parametrize("model", MODELS, ids=[m.id for m in MODELS])
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(f_port=st.integers(min_value=0, max_value=255), payload=st.binary(max_size=64))
def test_random_bytes_give_a_result_or_decode_error(model, f_port, payload):
    try:
        decoded = model.decode(f_port, payload)
    except DecodeError:
        return
    assert isinstance(decoded, dict)
    values = model.normalize(decoded, {"distance_empty_m": 1.0, "distance_full_m": 0.2})
    assert all(v is None or (isinstance(v, float) and math.isfinite(v)) for v in values.values())
    json.dumps(decoded, allow_nan=False)  # what we decode must be valid JSON, like TTS's


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


def test_docs_list_the_whole_vocabulary_and_every_model():
    from conftest import ROOT
    from decoders.normalize import METRICS

    doc = (ROOT / "docs" / "decoders.md").read_text()
    missing = [m for m in METRICS if f"| `{m}` |" not in doc]
    missing += [m.id for m in MODELS if f"| `{m.id}` |" not in doc]
    assert not missing, f"docs/decoders.md lacks {missing}"
