-- Plain PostgreSQL: the primary key of readings also carries the value (INCLUDE), so that a
-- device's readings over a time range -- a dashboard's series, a CSV export -- are read by an
-- index-only range scan of (device_id, metric, time): a 30-day series of one device touches
-- ~30 index pages instead of ~2,900 heap pages, which are scattered because readings arrive in
-- time order from all devices at once. The key columns, and so what the key enforces, stay the
-- same; index tuples grow by 8 bytes. (Heap pages written since the last vacuum are still read;
-- autovacuum marks insert-only pages all-visible as it goes.)
--
-- Rebuilding the key locks readings for as long as it takes: 70 s for 35 M rows on two cores.
--
-- TimescaleDB: nothing to do. Series of whole hours come from the continuous aggregate
-- readings_hourly there, and the hypertable's compressed chunks keep their own order.
DO $migration$
BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'timescaledb') THEN
        RAISE NOTICE 'timescaledb: readings keeps its primary key';
        RETURN;
    END IF;
    ALTER TABLE readings
        DROP CONSTRAINT readings_pkey,
        ADD CONSTRAINT readings_pkey PRIMARY KEY (device_id, metric, time) INCLUDE (value);
END
$migration$;
