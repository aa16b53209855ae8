-- Partition the time-keyed tables by decade instead of by month. ClickHouse refuses an INSERT whose
-- rows fall into more than 100 partitions (max_partitions_per_insert_block), so with monthly
-- partitions a file spanning more than 100 months could not be replayed; events may lie anywhere from
-- 1970 to 2099, which is 14 decades. Each table is rebuilt under its own name and swapped in.

CREATE TABLE IF NOT EXISTS {db}.events_by_decade AS {db}.events
ENGINE = ReplacingMergeTree PARTITION BY intDiv(toYear(occurred_at), 10) ORDER BY (school_id, event_id);
INSERT INTO {db}.events_by_decade SELECT * FROM {db}.events;
RENAME TABLE {db}.events TO {db}.events_by_month, {db}.events_by_decade TO {db}.events;
DROP TABLE {db}.events_by_month;

CREATE TABLE IF NOT EXISTS {db}.school_snapshots_by_decade AS {db}.school_snapshots
ENGINE = ReplacingMergeTree(version) PARTITION BY intDiv(toYear(at), 10) ORDER BY (school_id, at_us, event_id);
INSERT INTO {db}.school_snapshots_by_decade SELECT * FROM {db}.school_snapshots;
RENAME TABLE {db}.school_snapshots TO {db}.school_snapshots_by_month,
             {db}.school_snapshots_by_decade TO {db}.school_snapshots;
DROP TABLE {db}.school_snapshots_by_month;

CREATE TABLE IF NOT EXISTS {db}.alert_transitions_by_decade AS {db}.alert_transitions
ENGINE = ReplacingMergeTree(version) PARTITION BY intDiv(toYear(at), 10)
ORDER BY (school_id, rule, subject, at_us, transition);
INSERT INTO {db}.alert_transitions_by_decade SELECT * FROM {db}.alert_transitions;
RENAME TABLE {db}.alert_transitions TO {db}.alert_transitions_by_month,
             {db}.alert_transitions_by_decade TO {db}.alert_transitions;
DROP TABLE {db}.alert_transitions_by_month;
