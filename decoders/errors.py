"""The one error every decoder raises."""


class DecodeError(ValueError):
    """The payload is not a valid frame of this device model.

    The message says what was expected and what arrived, so that an IT person can act on it,
    e.g. ``DL-MBX expects 11 bytes for sensor flags 0x0003, got 7``.
    """
