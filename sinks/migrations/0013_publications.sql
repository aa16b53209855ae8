-- What `dualtrack report --publish` published (docs/domain.md, "Published and revised"): the report as of
-- `as_of_us` from the events that had arrived by `known_on_us`, as the contract's JSON (the headline
-- figures and every school's indicators). Publishing the same time and knowledge again replaces its
-- row; a later publication of the same time (with more known) is a row of its own.
CREATE TABLE IF NOT EXISTS {db}.publications (
    publication_id String,          -- sha256 of as_of_us, known_on_us and the rules
    as_of_us Int64,
    known_on_us Int64,
    published_at DateTime('UTC'),
    rules_key String,
    body String,
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (as_of_us, publication_id);
