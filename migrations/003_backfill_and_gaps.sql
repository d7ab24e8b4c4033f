-- What the backfill covered and when we were not listening: together they tell a frame-counter
-- gap that the radio lost from one that we missed.

CREATE TABLE backfill_runs (
    id              bigserial PRIMARY KEY,
    application_id  text NOT NULL,
    covered_from    timestamptz NOT NULL,   -- every uplink TTS stored in this window is ours now
    covered_to      timestamptz NOT NULL,
    fetched         integer NOT NULL,
    stored          integer NOT NULL,       -- of those, new to us
    finished_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX backfill_runs_app_idx ON backfill_runs (application_id, covered_to DESC);

-- Windows in which an intake could not receive: MQTT disconnected, or the service not running.
CREATE TABLE intake_outages (
    id              bigserial PRIMARY KEY,
    source          text NOT NULL,          -- mqtt, service
    started_at      timestamptz NOT NULL,
    ended_at        timestamptz
);
CREATE INDEX intake_outages_time_idx ON intake_outages (started_at, ended_at);

-- The service's heartbeat: after a crash, the outage runs from the last beat to the restart.
CREATE TABLE intake_heartbeat (
    instance        text PRIMARY KEY,
    last_alive      timestamptz NOT NULL
);

-- The backfill asks for "the newest uplink of this application".
CREATE INDEX raw_uplinks_app_time_idx ON raw_uplinks (application_id, received_at DESC);
