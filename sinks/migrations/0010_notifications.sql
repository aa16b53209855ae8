-- Notifications (docs/alerts.md), the pipeline's own health and the early warning. ClickHouse 18.16
-- and current releases alike: no CTEs, CODECs, TTL, DateTime64, Map or LowCardinality.

-- Every notice sent to a recipient on a channel, every digest, every delivery failure and every
-- suppressed transition: one row per notice_id, a deterministic id (recipient, channel and the
-- transition or the digest window), so a worker that restarts finds what it delivered and sends
-- nothing twice. A later status of the same notice (delivered after a retry) replaces the row.
CREATE TABLE IF NOT EXISTS {db}.notifications (
    notice_id String,
    kind String,                    -- notice | digest | suppressed
    status String,                  -- delivered | refused (permanent 4xx) | failed (given up) | suppressed
    recipient String,               -- the recipient's id; '' for suppressions
    channel String,                 -- webhook | email; '' for suppressions
    language String,
    rule String,                    -- '' for digests
    school_id String,               -- '' for digests
    subject String,
    severity String,
    transition String,              -- fired | resolved | severity_changed (notices); the transition (suppressions)
    transition_ids Array(String),   -- the alert transitions told (a digest lists all its items)
    caused_by Array(String),        -- why: the events that caused them
    why String,                     -- why it was sent, or why suppressed (docs/alerts.md, "Why")
    detail String,                  -- the delivery error, or the suppression's explanation
    window_end Nullable(DateTime('UTC')),   -- digests: the window they close
    decided_at DateTime('UTC'),
    recorded_at DateTime('UTC'),
    attempts UInt32,
    title String,
    body String,                    -- the text sent
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY intDiv(toYear(decided_at), 10)
ORDER BY notice_id;

-- Samples the worker takes on a timer. metric: consumer_lag (per topic and partition),
-- events_in_per_s, events_out_per_s, dead_letters_per_s, last_event_at (per school; value in epoch
-- seconds). Keyed by everything but the value, so a sample written twice replaces itself.
CREATE TABLE IF NOT EXISTS {db}.pipeline_metrics (
    at DateTime('UTC'),
    metric String,
    topic String,                   -- '' where not per topic
    partition Int32,                -- -1 where not per partition
    school_id String,               -- '' where not per school
    value Float64
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (metric, topic, partition, school_id, at);

-- The early warning, one row per registered school (the latest replaces the one before):
-- warning = 1 when its dual-teacher share is projected to fall below target within the horizon.
CREATE TABLE IF NOT EXISTS {db}.dual_share_forecasts (
    school_id String,
    computed_at DateTime('UTC'),
    level String,
    professional_teachers UInt32,
    dual_teachers UInt32,
    dual_share Nullable(Float64),
    target Nullable(Float64),
    falls_below_on String,          -- YYYY-MM-DD; '' when not projected to fall below
    days_left Nullable(Int32),
    dual_teachers_then Nullable(UInt32),
    certificates Array(String),     -- the certificates whose expiry causes it
    warning UInt8,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY school_id;
