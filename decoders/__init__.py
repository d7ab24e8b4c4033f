"""Device decoders: pure functions, bytes in, measurements out. No I/O here.

Each model module exposes ``MODEL`` (``decoders.model.DeviceModel``); ``decoders.registry``
finds them by decoder id (``vendor/model``) or TTS ``version_ids``.
"""
from decoders.errors import DecodeError
from decoders.model import DeviceModel
from decoders.registry import MODELS, by_id, by_tts

__all__ = ["DecodeError", "DeviceModel", "MODELS", "by_id", "by_tts"]
