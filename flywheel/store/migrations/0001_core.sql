-- Canonical interactions and the quarantine. See DESIGN.md "Data model".
-- No PRIMARY KEY index on interactions.id: ingestion de-duplicates with an anti-join, which DuckDB runs
-- far faster than ART index maintenance, and only one process can write the file at a time.
CREATE TABLE interactions (
    id                VARCHAR NOT NULL,   -- sha256(workload_id, canonical request, canonical response)
    workload_id       VARCHAR NOT NULL,
    client_id         VARCHAR,
    source            VARCHAR NOT NULL,   -- connector name
    source_ref        VARCHAR NOT NULL,   -- file:line (or trace id)
    ts                TIMESTAMP,
    model             VARCHAR,
    request           JSON NOT NULL,      -- chat.completions.create payload
    response          JSON NOT NULL,      -- {"message", "finish_reason"} or {"error"}
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    latency_ms        DOUBLE,
    cost_usd          DOUBLE,
    logprobs          JSON,
    feedback          JSON,
    status            VARCHAR NOT NULL,   -- ok | error
    metadata          JSON,
    batch_id          VARCHAR NOT NULL,
    ingested_at       TIMESTAMP NOT NULL
);

CREATE TABLE quarantine (
    id         VARCHAR NOT NULL,          -- sha256(source_ref, reason, raw): re-reading a file adds nothing
    raw        VARCHAR,
    source     VARCHAR NOT NULL,
    source_ref VARCHAR NOT NULL,
    stage      VARCHAR NOT NULL,          -- ingest | curate | label | ...
    reason     VARCHAR NOT NULL,
    detail     VARCHAR,
    workload_id VARCHAR,
    batch_id   VARCHAR NOT NULL,
    quarantined_at TIMESTAMP NOT NULL
);

CREATE TABLE ingest_batches (
    batch_id    VARCHAR PRIMARY KEY,
    workload_id VARCHAR,
    source      VARCHAR NOT NULL,
    path        VARCHAR NOT NULL,
    read        BIGINT NOT NULL,
    ingested    BIGINT NOT NULL,
    duplicates  BIGINT NOT NULL,
    quarantined BIGINT NOT NULL,
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL
);

CREATE VIEW v_workload_stats AS
SELECT workload_id,
       count(*)                                        AS interactions,
       count(*) FILTER (WHERE status = 'ok')           AS ok,
       count(*) FILTER (WHERE status <> 'ok')          AS errors,
       count(DISTINCT client_id)                       AS clients,
       min(ts)                                         AS first_ts,
       max(ts)                                         AS last_ts,
       coalesce(sum(prompt_tokens), 0)                 AS prompt_tokens,
       coalesce(sum(completion_tokens), 0)             AS completion_tokens,
       coalesce(sum(cost_usd), 0)                      AS cost_usd,
       count(*) FILTER (WHERE cost_usd IS NULL)        AS unpriced
FROM interactions
GROUP BY workload_id;
