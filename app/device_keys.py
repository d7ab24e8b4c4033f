"""Which stored device an uplink belongs to, when device ids are unique only per application.

A device is (network, application, the network's device id): two TTS applications, one per town
or per device type, may both have a ``bin-001``. Every table keys on one short text, the device
key, which is what the API, CSV and Grafana show as ``device_id``:

- the network's device id itself, while no other application has claimed it: every single-
  application installation, and every URL from before several applications, keeps working;
- ``{device id}@{application id}`` for a later application's device of the same id (``@`` cannot
  occur in TTS or ChirpStack ids, so the key is unambiguous and reads like TTS's ``app@tenant``).

A key, once given, stays with its device: the database remembers it (``devices``: network,
application_id, network_device_id). A device a person configured before it ever sent (no
application yet) is claimed by the first application that sends its id. Pure logic: the
pipeline feeds it the devices table and asks it for each uplink's key.
"""
from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass

SEPARATOR = "@"

Triple = tuple[str, str, str]  # network, application id, the network's device id


@dataclass(frozen=True, slots=True)
class KeyRow:
    """One stored device as the resolver needs it."""

    device_id: str  # the key
    network: str | None
    application_id: str | None
    network_device_id: str | None


def qualified(device_id: str, application_id: str) -> str:
    return f"{device_id}{SEPARATOR}{application_id}"


def split(key: str) -> tuple[str, str | None]:
    """``bin-001@town-b`` -> ("bin-001", "town-b"); a plain id -> (id, None)."""
    device_id, sep, application_id = key.partition(SEPARATOR)
    return device_id, (application_id if sep else None)


class DeviceKeys:
    """Gives each (network, application, device id) its key; thread-safe.

    The preparer and, on a retry, the writer ask concurrently; keys given out here before the
    database holds them are kept until a reload shows them stored.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_triple: dict[Triple, str] = {}
        # Configured by a person with an application but before any uplink named the network.
        self._by_application: dict[tuple[str, str], str] = {}
        # Keys that belong to a device or wait for one. A device configured with no
        # application is not in it: the first application that sends its id takes it.
        self._taken: set[str] = set()
        self._given: dict[Triple, str] = {}  # given out here, not yet seen stored

    def load(self, rows: Iterable[KeyRow]) -> None:
        by_triple: dict[Triple, str] = {}
        by_application: dict[tuple[str, str], str] = {}
        taken: set[str] = set()
        for row in rows:
            own_id = row.network_device_id or split(row.device_id)[0]
            if row.application_id and row.network:
                by_triple[(row.network, row.application_id, own_id)] = row.device_id
                taken.add(row.device_id)
            elif row.application_id:
                by_application[(row.application_id, own_id)] = row.device_id
                taken.add(row.device_id)
        with self._lock:
            # Keys given out here and not stored yet stay, unless the database says otherwise:
            # it holds the device already, or another device holds the key (given before the
            # first load, say): then the next uplink gets a key anew.
            self._given = {t: k for t, k in self._given.items()
                           if t not in by_triple and k not in taken}
            for triple, key in self._given.items():
                by_triple[triple] = key
                taken.add(key)
            self._by_triple, self._by_application = by_triple, by_application
            self._taken = taken

    def key(self, network: str, application_id: str, device_id: str) -> str:
        triple = (network, application_id, device_id)
        key = self._by_triple.get(triple)  # the hot path: a dict lookup, no lock
        if key is not None:
            return key
        with self._lock:
            key = self._by_triple.get(triple)
            if key is None:
                key = (self._by_application.pop((application_id, device_id), None)
                       or self._free(triple))
                self._by_triple[triple] = self._given[triple] = key
                self._taken.add(key)
            return key

    def _free(self, triple: Triple) -> str:
        network, application_id, device_id = triple
        for key in (device_id, qualified(device_id, application_id),
                    qualified(device_id, f"{application_id}-{network}")):
            if key not in self._taken:
                return key
        # Only a device configured by hand under exactly these keys can leave none free.
        raise ValueError(f"no free device key for {device_id} in {network} application "
                         f"{application_id}")
