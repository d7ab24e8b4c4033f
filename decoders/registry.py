"""Which device models we can decode, by decoder id and by TTS ``version_ids``.

Adding a model: one module with a ``MODEL``, one examples file, one line in ``MODELS``.
"""
from __future__ import annotations

from decoders import decentlab_dl_mbx
from decoders.model import DeviceModel

MODELS: tuple[DeviceModel, ...] = (
    decentlab_dl_mbx.MODEL,
)

_BY_ID = {m.id: m for m in MODELS}
_BY_TTS = {ids: m for m in MODELS for ids in m.tts_ids}


def by_id(decoder_id: str) -> DeviceModel | None:
    return _BY_ID.get(decoder_id)


def by_tts(brand_id: str | None, model_id: str | None) -> DeviceModel | None:
    if not brand_id or not model_id:
        return None
    return _BY_TTS.get((brand_id, model_id))
