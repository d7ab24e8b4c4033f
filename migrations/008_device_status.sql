-- A device's health as its network server last learned it: ChirpStack's `status` event (the
-- LoRaWAN DevStatusAns to the network server's DevStatusReq). The same values are written as
-- readings (battery_pct, link_margin_db); these columns are what /api/v1/devices shows.
ALTER TABLE devices
    ADD COLUMN status_at       timestamptz,
    ADD COLUMN battery_pct     real,       -- NULL: not measurable, or external power
    ADD COLUMN external_power  boolean,
    ADD COLUMN link_margin_db  integer;
