-- Route plans (issue 6): per day, kind of round and vehicle, the ordered stops with their ETA,
-- what the fixed schedule would have driven, and per stop whether it was done.
--
-- Staff-council rule: nothing here identifies a crew member. A stop is done "by the crew" or
-- "by the sensor", never by a name, login or token.

CREATE TABLE route_plans (
    id                  bigserial PRIMARY KEY,
    day                 date NOT NULL,
    kind                text NOT NULL CHECK (kind IN ('collection', 'watering')),
    vehicle_id          text NOT NULL,
    vehicle_name        text NOT NULL,
    start_at            timestamptz NOT NULL,        -- shift start at the depot
    distance_m          integer NOT NULL CHECK (distance_m >= 0),
    duration_s          integer NOT NULL CHECK (duration_s >= 0),  -- depot to depot, break in
    trips               integer NOT NULL DEFAULT 1,  -- 1 + unloads at the depot on the way
    -- The day as a whole (the same on every vehicle's row of a day and kind): what was offered
    -- to the solver and what it could not serve.
    must_count          integer NOT NULL,
    may_count           integer NOT NULL,
    unserved_must       text[] NOT NULL DEFAULT '{}',
    baseline_distance_m integer,                     -- the fixed round of the day; NULL: none
    baseline_stops      integer,
    feasible            boolean NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (day, kind, vehicle_id)
);

CREATE TABLE route_stops (
    plan_id         bigint NOT NULL REFERENCES route_plans (id) ON DELETE CASCADE,
    seq             integer NOT NULL CHECK (seq >= 1),
    device_id       text NOT NULL,
    name            text,
    municipality    text,
    latitude        double precision NOT NULL,
    longitude       double precision NOT NULL,
    reason          text NOT NULL CHECK (reason IN ('must', 'may')),
    eta             timestamptz NOT NULL,
    value_now       double precision,               -- fill % (bins), soil moisture % (plants)
    value_expected  double precision,               -- the same, expected at the ETA
    demand_l        integer NOT NULL,               -- litter taken on or water handed out
    trip            integer,                        -- 0-based; a new trip after unloading
    status          text NOT NULL DEFAULT 'planned' CHECK (status IN ('planned', 'done')),
    done_at         timestamptz,
    done_by         text CHECK (done_by IN ('crew', 'sensor')),
    -- When the crew took a "done" back: the sensor confirms only from readings after it.
    reopened_at     timestamptz,
    PRIMARY KEY (plan_id, seq),
    CHECK ((status = 'done') = (done_at IS NOT NULL AND done_by IS NOT NULL))
);
