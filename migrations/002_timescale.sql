-- TimescaleDB where it is there; plain PostgreSQL otherwise. Both end with a relation
-- readings_hourly (bucket, device_id, metric, avg, min, max, last, n) that the service and
-- dashboards query the same way.
--
-- TimescaleDB: raw_uplinks and readings become hypertables (1-day chunks), compressed after
-- 7 days; raw uplinks are dropped after 180 days, readings after 2 years; readings_hourly is a
-- real-time continuous aggregate refreshed every 30 minutes over the last 3 days, a window well
-- inside the retained range so that retention never empties the aggregate. Hours older than
-- that window which receive late readings are refreshed by the writer (app/aggregates.py).
--
-- TimescaleDB under its Apache licence only (timescaledb.license = 'apache', e.g. some
-- distributions' packages): compression, policies and continuous aggregates are not there, so
-- the hypertables stay uncompressed and are never dropped by age, and readings_hourly is the
-- plain view. A warning says so; nothing fails.
--
-- Amended after release to degrade under the Apache licence instead of failing there; where
-- the first version ran, this one builds the same schema (app/migrate.py: AMENDED).
DO $migration$
DECLARE
    have_timescale boolean;
BEGIN
    have_timescale :=
        EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb')
        OR (EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
            AND current_setting('shared_preload_libraries') LIKE '%timescaledb%');

    IF have_timescale THEN
        CREATE EXTENSION IF NOT EXISTS timescaledb;

        PERFORM create_hypertable('raw_uplinks', 'received_at',
                                  chunk_time_interval => INTERVAL '1 day', migrate_data => true);
        PERFORM create_hypertable('readings', 'time',
                                  chunk_time_interval => INTERVAL '1 day', migrate_data => true);
    END IF;

    IF NOT have_timescale OR current_setting('timescaledb.license', true) = 'apache' THEN
        IF have_timescale THEN
            RAISE WARNING 'timescaledb runs under its Apache licence only: hypertables without '
                'compression, retention policies or the continuous aggregate; readings_hourly '
                'is a plain view (set timescaledb.license = ''timescale'' for all of them)';
        ELSE
            RAISE NOTICE 'timescaledb not available: plain PostgreSQL tables and views';
        END IF;
        CREATE VIEW readings_hourly AS
            SELECT date_bin('1 hour', time, TIMESTAMPTZ '2000-01-01 00:00:00+00') AS bucket,
                   device_id, metric,
                   avg(value) AS avg, min(value) AS min, max(value) AS max,
                   (array_agg(value ORDER BY time DESC))[1] AS last,
                   count(*) AS n
              FROM readings
             GROUP BY bucket, device_id, metric;
        RETURN;
    END IF;

    -- Every column of a unique index must be a segmentby or orderby column.
    ALTER TABLE raw_uplinks SET (timescaledb.compress,
        timescaledb.compress_segmentby = 'device_id',
        timescaledb.compress_orderby = 'received_at DESC, dedup_key');
    ALTER TABLE readings SET (timescaledb.compress,
        timescaledb.compress_segmentby = 'device_id, metric',
        timescaledb.compress_orderby = 'time DESC');
    PERFORM add_compression_policy('raw_uplinks', INTERVAL '7 days');
    PERFORM add_compression_policy('readings', INTERVAL '7 days');
    PERFORM add_retention_policy('raw_uplinks', INTERVAL '180 days');
    PERFORM add_retention_policy('readings', INTERVAL '730 days');

    -- WITH NO DATA: creating with data cannot run inside the migration's transaction.
    EXECUTE $cagg$
        CREATE MATERIALIZED VIEW readings_hourly
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
            SELECT time_bucket(INTERVAL '1 hour', time) AS bucket,
                   device_id, metric,
                   avg(value) AS avg, min(value) AS min, max(value) AS max,
                   last(value, time) AS last,
                   count(*) AS n
              FROM readings
             GROUP BY bucket, device_id, metric
        WITH NO DATA
    $cagg$;
    PERFORM add_continuous_aggregate_policy('readings_hourly',
        start_offset => INTERVAL '3 days',
        end_offset => INTERVAL '1 hour',
        schedule_interval => INTERVAL '30 minutes');
END
$migration$;
