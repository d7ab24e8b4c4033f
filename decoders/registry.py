"""Which device models we can decode, by decoder id and by TTS ``version_ids``.

Every module in this package that defines ``MODEL`` (a ``DeviceModel``) is a supported model:
adding one is a module and an examples file, nothing else to edit.
"""
from __future__ import annotations

import importlib
import pkgutil

import decoders
from decoders.model import DeviceModel


def _discover() -> tuple[DeviceModel, ...]:
    found = []
    for info in pkgutil.iter_modules(decoders.__path__):
        module = importlib.import_module(f"decoders.{info.name}")
        model = getattr(module, "MODEL", None)
        if isinstance(model, DeviceModel):
            found.append(model)
    ids = [m.id for m in found]
    if len(set(ids)) != len(ids):
        raise RuntimeError(f"two decoder modules claim the same id: {sorted(ids)}")
    return tuple(sorted(found, key=lambda m: m.id))


MODELS: tuple[DeviceModel, ...] = _discover()
_BY_ID = {m.id: m for m in MODELS}
_BY_TTS = {ids: m for m in MODELS for ids in m.tts_ids}


def by_id(decoder_id: str) -> DeviceModel | None:
    return _BY_ID.get(decoder_id)


def by_tts(brand_id: str | None, model_id: str | None) -> DeviceModel | None:
    if not brand_id or not model_id:
        return None
    return _BY_TTS.get((brand_id, model_id))
