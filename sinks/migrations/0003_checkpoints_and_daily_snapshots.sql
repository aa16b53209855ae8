-- Engine checkpoints: the fold's state after a position of the log (its last applied event, in rule
-- order), so that a restart or an as-of report folds only the events after it. A checkpoint is usable
-- only while the log holds exactly `events` events up to its position (a late event before it makes
-- the count differ); large states are split into parts.
CREATE TABLE IF NOT EXISTS {db}.engine_checkpoints (
    position_us Int64,              -- occurred_at (microseconds) of the last applied event
    position_id String,             -- its event_id (ties in occurred_at are ordered by event_id)
    events UInt64,                  -- kept events up to and including the position when it was taken
    taken_at DateTime('UTC'),
    rule_version String,            -- the rules file's version: another version never restores it
    part UInt32,
    parts UInt32,
    blob String,                    -- zlib-compressed state of the engine, split into parts
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (position_us, position_id, part);

-- School snapshots keep one row per school and day (China Standard Time): the state after that
-- school's last change of the day. A restatement rewrites the rows of the days it changes.
CREATE TABLE IF NOT EXISTS {db}.school_snapshots_by_day (
    school_id String,
    day Date,
    at DateTime('UTC'),
    at_us Int64,
    event_id String,
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
    student_teacher_ratio Nullable(Float64),
    ratio_limit Nullable(Float64),
    professional_teachers UInt32,
    postgraduate_share Nullable(Float64),
    doctor_share Nullable(Float64),
    senior_title_share Nullable(Float64),
    part_time_share Nullable(Float64),
    version UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY intDiv(toYear(day), 10)
ORDER BY (school_id, day);
INSERT INTO {db}.school_snapshots_by_day
SELECT school_id, toDate(at + 28800) AS day, at, at_us, event_id, name, level, city, circle, communities,
       registered, students, full_time_teachers, part_time_teachers, fte_teachers, student_teacher_ratio,
       ratio_limit, professional_teachers, postgraduate_share, doctor_share, senior_title_share,
       part_time_share, version
FROM {db}.school_snapshots;
RENAME TABLE {db}.school_snapshots TO {db}.school_snapshots_by_event,
             {db}.school_snapshots_by_day TO {db}.school_snapshots;
DROP TABLE {db}.school_snapshots_by_event;
