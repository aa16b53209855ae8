-- A late event restates history: the school snapshots of the days after it that the new history no
-- longer has (a school an event no longer touched) are retracted, as alert transitions are.
ALTER TABLE {db}.school_snapshots ADD COLUMN retracted UInt8 DEFAULT 0;
