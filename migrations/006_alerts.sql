-- Alerts (issue 8): one row per alert (alerts/lifecycle.py AlertState, the same fields), and
-- every notification sent or attempted for it.
--
-- Staff-council rule, as for route stops: nothing here identifies a person. An alert is
-- acknowledged by a role ("crew" or "admin"), never by a name, login or token.

CREATE TABLE alerts (
    id                  text PRIMARY KEY,           -- uuid5(device, rule, first_seen)
    rule_id             text NOT NULL,
    device_id           text NOT NULL,
    device_name         text,
    municipality        text,
    severity            text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    status              text NOT NULL
                        CHECK (status IN ('pending', 'open', 'acknowledged', 'closed')),
    first_seen          timestamptz NOT NULL,       -- the condition began (from the data)
    opened_at           timestamptz,                -- NULL while pending
    acknowledged_at     timestamptz,
    acknowledged_by     text CHECK (acknowledged_by IN ('crew', 'admin')),
    closed_at           timestamptz,
    clear_since         timestamptz,                -- first clearing observation of this spell
    last_notified_at    timestamptz,
    reminders_sent      integer NOT NULL DEFAULT 0 CHECK (reminders_sent >= 0),
    value               double precision,
    detail              jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'closed') = (closed_at IS NOT NULL)),
    CHECK (status = 'pending' OR status = 'closed' OR opened_at IS NOT NULL),
    CHECK ((status = 'acknowledged') <= (acknowledged_at IS NOT NULL))
);

-- One alert per device and rule that is not closed, never two (the lifecycle's invariant,
-- enforced here too so that a bug or a second writer cannot break it).
CREATE UNIQUE INDEX alerts_one_live_per_device_rule ON alerts (device_id, rule_id)
    WHERE status <> 'closed';
-- The overview's "active alerts, newest first" and the list's filters.
CREATE INDEX alerts_status_opened_idx ON alerts (status, opened_at DESC);
CREATE INDEX alerts_opened_idx ON alerts (opened_at DESC) WHERE opened_at IS NOT NULL;

-- The audit trail: each delivery of each notification on each channel, failed ones included.
CREATE TABLE alert_notifications (
    id                  bigserial PRIMARY KEY,
    alert_id            text NOT NULL REFERENCES alerts (id) ON DELETE CASCADE,
    event               text NOT NULL CHECK (event IN ('opened', 'reminder', 'closed')),
    channel             text NOT NULL,
    route               text,
    time                timestamptz NOT NULL,       -- when it was sent (the evaluation's clock)
    ok                  boolean NOT NULL,
    error               text
);
CREATE INDEX alert_notifications_alert_idx ON alert_notifications (alert_id, time);
