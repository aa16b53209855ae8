-- The event log, dead letters and the live state tables. Runs on ClickHouse 18.16 and current
-- releases alike: no CTEs, CODECs, TTL, DateTime64, Map or LowCardinality. Every table is a
-- ReplacingMergeTree on a deterministic key, so a redelivered row replaces itself and is never counted
-- twice (read with FINAL or argMax).

CREATE TABLE IF NOT EXISTS {db}.events (
    event_id String,
    event_type String,
    school_id String,
    occurred_at DateTime('UTC'),
    occurred_at_us Int64,           -- exact instant (microseconds since the epoch), for ordering
    emitted_at_us Int64,            -- 0 when absent
    arrived_at DateTime('UTC'),     -- when it reached the store
    content_hash String,            -- sha256 of the canonical content: the duplicate test
    body String                     -- the canonical JSON of the event
) ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (school_id, event_id);

CREATE TABLE IF NOT EXISTS {db}.dead_letters (
    dead_letter_id String,          -- sha256 of reason and original bytes: redelivery replaces itself
    reason String,
    message String,
    school_id String,
    event_id String,
    event_type String,
    raw String,                     -- the original bytes
    arrived_at DateTime('UTC'),
    origin String                   -- the topic or file it came from
) ENGINE = ReplacingMergeTree
ORDER BY (school_id, reason, dead_letter_id);

CREATE TABLE IF NOT EXISTS {db}.teacher_state (
    teacher_id String,
    school_id String,               -- '' when not active anywhere
    employment String,
    course_type String,
    title String,
    degree String,
    certificates UInt16,            -- certificates held (granted, not revoked)
    updated_at DateTime('UTC'),
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY teacher_id;

CREATE TABLE IF NOT EXISTS {db}.school_snapshots (
    school_id String,
    at DateTime('UTC'),
    at_us Int64,
    event_id String,                -- the event after which this snapshot holds
    name String,
    level String,
    city String,
    circle String,
    communities Array(String),
    registered UInt8,
    students Float64,
    full_time_teachers UInt32,
    part_time_teachers UInt32,
    fte_teachers Float64,
    student_teacher_ratio Nullable(Float64),   -- NULL when infinite
    ratio_limit Nullable(Float64),
    professional_teachers UInt32,
    postgraduate_share Nullable(Float64),
    doctor_share Nullable(Float64),
    senior_title_share Nullable(Float64),
    part_time_share Nullable(Float64),
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(at)
ORDER BY (school_id, at_us, event_id);

CREATE TABLE IF NOT EXISTS {db}.school_status (
    school_id String,
    as_of DateTime('UTC'),
    name String,
    level String,
    city String,
    circle String,
    communities Array(String),
    students Float64,
    full_time_teachers UInt32,
    part_time_teachers UInt32,
    fte_teachers Float64,
    student_teacher_ratio Nullable(Float64),
    ratio_limit Nullable(Float64),
    professional_teachers UInt32,
    dual_teachers UInt32,
    dual_share Nullable(Float64),
    postgraduate_share Nullable(Float64),
    doctor_share Nullable(Float64),
    senior_title_share Nullable(Float64),
    part_time_share Nullable(Float64),
    active_studios UInt32,
    compliant_studios UInt32,
    violations Array(String),
    status String,
    last_event_at DateTime('UTC'),
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY school_id;

CREATE TABLE IF NOT EXISTS {db}.studio_state (
    studio_id String,
    school_id String,
    name String,
    level String,
    trade String,
    community String,
    lead_teacher_id String,
    established_at DateTime('UTC'),
    active UInt8,
    members UInt16,
    compliant UInt8,
    reasons Array(String),
    last_activity_at Nullable(DateTime('UTC')),
    last_evaluation String,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY studio_id;

CREATE TABLE IF NOT EXISTS {db}.alert_transitions (
    rule String,
    school_id String,
    subject String,
    transition String,              -- fired | updated | resolved
    at DateTime('UTC'),
    at_us Int64,
    severity String,
    value Nullable(Float64),
    threshold Nullable(Float64),
    since Nullable(DateTime('UTC')),
    reasons Array(String),
    caused_by Array(String),
    rule_version String,
    retracted UInt8,                -- 1: a late event restated history and this transition no longer holds
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(at)
ORDER BY (school_id, rule, subject, at_us, transition);
