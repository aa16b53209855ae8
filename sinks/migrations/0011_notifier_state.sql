-- The notifier's memory (docs/alerts.md, "Delivery, exactly once"): what was told of each alert, the
-- digest items waiting for their window and the messages decided but not yet settled. One cycle of the
-- policy is one INSERT into this one unpartitioned table, so a cycle lands whole or not at all. The
-- newest row of a key wins (`cycle` grows across workers: each continues from the largest it reads);
-- an empty body removes the key. The worker that takes the province's engine over reads it and goes
-- on where the last one stopped, on any machine.
CREATE TABLE IF NOT EXISTS {db}.notifier_state (
    key String,             -- track|<alert>, queued|<transition id>|<kind>, message|<notice id>
    body String,            -- the entry as JSON; '' when removed
    cycle UInt64,
    written_at DateTime('UTC')
) ENGINE = ReplacingMergeTree(cycle)
ORDER BY key;
