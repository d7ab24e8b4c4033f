-- One dead letter per distinct bad message, however often it comes: TTS retries a webhook, an
-- MQTT session redelivers, every backfill run fetches the same stored message again. A
-- message is the same when its source and its bytes are (fingerprint: sha256 of the source, a
-- NUL and the raw bytes as received; app/store.py computes it over the whole message, before
-- the raw bytes are cut to the size cap). `count` says how often it came, `last_seen` when last.
ALTER TABLE ingest_errors
    ADD COLUMN fingerprint bytea,
    ADD COLUMN count integer NOT NULL DEFAULT 1,
    ADD COLUMN last_seen timestamptz;

UPDATE ingest_errors
   SET fingerprint = sha256(convert_to(source, 'UTF8') || '\x00'::bytea || raw), last_seen = time;

-- Repeats written before this migration become one row: the first, counting them all.
UPDATE ingest_errors e
   SET count = r.n, last_seen = r.last
  FROM (SELECT fingerprint, count(*) AS n, max(time) AS last,
               (array_agg(id ORDER BY time, id))[1] AS first
          FROM ingest_errors GROUP BY fingerprint HAVING count(*) > 1) r
 WHERE e.id = r.first;
DELETE FROM ingest_errors e
 USING (SELECT fingerprint, (array_agg(id ORDER BY time, id))[1] AS first
          FROM ingest_errors GROUP BY fingerprint HAVING count(*) > 1) r
 WHERE e.fingerprint = r.fingerprint AND e.id <> r.first;

ALTER TABLE ingest_errors
    ALTER COLUMN fingerprint SET NOT NULL,
    ALTER COLUMN last_seen SET NOT NULL,
    ALTER COLUMN last_seen SET DEFAULT now();
CREATE UNIQUE INDEX ingest_errors_fingerprint_key ON ingest_errors (fingerprint);
CREATE INDEX ingest_errors_last_seen_idx ON ingest_errors (last_seen DESC);
