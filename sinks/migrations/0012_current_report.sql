-- The report for now (docs/domain.md, "The report for now"): the report the engine built at `as_of`, as
-- JSON, with what it holds for. It is the report at any time T from `as_of` up to (not including)
-- `valid_before_us` while the log still holds exactly `events` events and the rules are `rules_key`:
-- nothing a report reads changes in between (the day, a studio's activity window). Written by the engine
-- after a catch-up and on every clock tick; the newest version wins.
CREATE TABLE IF NOT EXISTS {db}.current_report (
    scope String,
    as_of DateTime('UTC'),
    as_of_us Int64,
    valid_before_us Int64,
    events UInt64,
    rules_key String,
    body String,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY scope;
