-- TimescaleDB: an index on the hourly aggregate for what the API and dashboards ask of it, one
-- device's metric over a time range (/series, Grafana), covering the aggregate's columns.
--
-- TimescaleDB indexes a continuous aggregate by each GROUP BY column with the bucket,
-- (device_id, bucket) and (metric, bucket), so a device's metric was read as every metric of
-- the device, or every device's metric, and filtered: with 1,000 devices, thousands of rows
-- removed per chunk for the 720 of a 30-day series. And the policy materialises an hour of all
-- devices at a time, so a device's hours lie on as many heap pages as there are hours: INCLUDE
-- makes it an index-only scan (the benchmark's 30-day series: 15 ms cold to 3 ms).
--
-- Plain PostgreSQL (and TimescaleDB without the aggregate): readings_hourly is a view; series
-- are read from readings by its primary key. Nothing to do.
DO $migration$
BEGIN
    IF to_regclass('timescaledb_information.continuous_aggregates') IS NULL THEN
        RETURN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM timescaledb_information.continuous_aggregates
                    WHERE view_name = 'readings_hourly') THEN
        RETURN;
    END IF;
    CREATE INDEX readings_hourly_device_metric_bucket_idx
        ON readings_hourly (device_id, metric, bucket DESC) INCLUDE (avg, min, max, last, n);
END
$migration$;
