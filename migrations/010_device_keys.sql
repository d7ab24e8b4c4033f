-- Device ids are unique only inside an application: one Bauhof may run several TTS applications
-- (one per town or device type), each with its own `bin-001`. A device is (network, application,
-- the network's device id); `device_id` stays the key every table uses, and is that id itself
-- unless another application holds it, then `{id}@{application}` (app/device_keys.py).
ALTER TABLE devices ADD COLUMN network_device_id text;
UPDATE devices SET network_device_id = device_id WHERE network IS NOT NULL;
-- One key per device: a second key for the same device would split its readings.
CREATE UNIQUE INDEX devices_network_application_device_idx
    ON devices (network, application_id, network_device_id)
    WHERE network IS NOT NULL AND application_id IS NOT NULL;
