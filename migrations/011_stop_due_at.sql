-- Why a stop is on the route, as the crews' page says it: when the bin would be full (or the
-- plant dry), as forecast at planning ("voll am Di 14:00"). NULL: not within the forecast's
-- horizon, or planned before this column existed.
ALTER TABLE route_stops ADD COLUMN due_at timestamptz;
