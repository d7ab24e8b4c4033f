-- Core tables. Plain PostgreSQL; 002 turns the time series into hypertables where TimescaleDB
-- is available. Nothing here may fail per row on good-faith input, because a constraint that
-- fails takes the whole batch with it (the writer then bisects, but that is slow).

CREATE TABLE devices (
    device_id       text PRIMARY KEY,           -- TTS device id; ChirpStack: eui-<deveui>
    dev_eui         text,                       -- upper-case hex
    application_id  text,
    network         text,                       -- tts | chirpstack
    brand_id        text,                       -- TTS version_ids, as the uplinks report them
    model_id        text,
    decoder         text,                       -- configured decoder id (vendor/model); wins
    kind            text,                       -- bin | weather | soil | irrigation | level
    name            text,
    municipality    text,
    latitude        double precision,
    longitude       double precision,
    -- bin volume (volume_l), mounting geometry (distance_empty_m, distance_full_m), thresholds
    attributes      jsonb NOT NULL DEFAULT '{}'::jsonb,
    registered      boolean NOT NULL DEFAULT false,  -- true once a person configured it
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen       timestamptz
);
CREATE INDEX devices_dev_eui_idx ON devices (dev_eui);
CREATE INDEX devices_municipality_kind_idx ON devices (municipality, kind);

CREATE TABLE raw_uplinks (
    received_at     timestamptz NOT NULL,       -- network server reception = measurement time
    device_id       text NOT NULL,
    dedup_key       text NOT NULL,              -- see app/model.py Uplink.dedup_key
    network         text NOT NULL,
    source          text NOT NULL,              -- tts-mqtt, tts-webhook, chirpstack-mqtt, ...
    application_id  text,
    dev_eui         text,
    dev_addr        text,
    session_key_id  text,
    f_port          integer NOT NULL,
    f_cnt           bigint NOT NULL,
    frm_payload     bytea NOT NULL,
    decoded_payload jsonb,                      -- as the network server's formatter sent it
    decoder         text,                       -- the decoder we used, if any
    simulated       boolean NOT NULL DEFAULT false,
    confirmed       boolean NOT NULL DEFAULT false,
    correlation_id  text,
    gateway_count   smallint NOT NULL DEFAULT 0,
    rssi            real,                       -- best over all gateways
    snr             real,
    spreading_factor smallint,
    bandwidth       integer,
    frequency       bigint,
    airtime_s       real,
    ingested_at     timestamptz NOT NULL DEFAULT now(),
    -- The idempotency key. received_at is part of it (a hypertable's unique index must contain
    -- its time column) and every delivery path carries the same value.
    UNIQUE (device_id, received_at, dedup_key)
);

-- Narrow time series: one row per device, metric and time.
CREATE TABLE readings (
    time            timestamptz NOT NULL,
    device_id       text NOT NULL,
    metric          text NOT NULL,
    value           double precision NOT NULL,
    PRIMARY KEY (device_id, metric, time)
);

-- The newest value per device and metric, kept by the writer so that "latest values of all
-- devices" is one index scan on both PostgreSQL and TimescaleDB.
CREATE TABLE latest_readings (
    device_id       text NOT NULL,
    metric          text NOT NULL,
    time            timestamptz NOT NULL,
    value           double precision NOT NULL,
    PRIMARY KEY (device_id, metric)
);

-- Dead letters: everything we could not store as a reading, with the reason and the raw bytes.
CREATE TABLE ingest_errors (
    id              uuid PRIMARY KEY,
    time            timestamptz NOT NULL DEFAULT now(),
    source          text NOT NULL,
    stage           text NOT NULL,              -- parse, validate, device, decode, store, internal
    reason          text NOT NULL,
    topic           text,
    device_id       text,
    raw             bytea NOT NULL,             -- the message as received (cut at raw_size cap)
    raw_size        integer NOT NULL,
    truncated       boolean NOT NULL DEFAULT false
);
CREATE INDEX ingest_errors_time_idx ON ingest_errors (time DESC);
