-- Each school's HTTP token for the gateway (`dualtrack schools add`, docs/gateway.md), kept as its
-- sha256 only: the token is shown once and never stored. One row per school is current (the highest
-- version); a revoked school's row has an empty hash, which no token matches.
CREATE TABLE IF NOT EXISTS {db}.school_tokens (
    school_id String,
    token_sha256 String,            -- '' once revoked
    issued_at DateTime('UTC'),
    version UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY school_id;
