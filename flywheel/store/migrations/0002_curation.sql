-- Curation (flywheel/curate.py): runs, per-interaction verdicts, data-quality results, PII counts,
-- slice statistics, prompt templates and versioned dataset snapshots.
CREATE TABLE curation_runs (
    run_id      VARCHAR PRIMARY KEY,
    workload_id VARCHAR NOT NULL,
    snapshot_id VARCHAR,                 -- the snapshot this run produced or found identical
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    n_in        BIGINT NOT NULL,         -- interactions of the workload read
    n_out       BIGINT NOT NULL,         -- examples in the snapshot (train + val + eval)
    funnel      JSON NOT NULL,           -- {"in", "rejected": {reason: n}, "out", "splits"}
    report      JSON NOT NULL            -- the whole CurationReport
);

-- Exactly one row per input interaction and run: keep, or the FIRST failing reason.
CREATE TABLE curation_verdicts (
    run_id         VARCHAR NOT NULL,
    interaction_id VARCHAR NOT NULL,
    workload_id    VARCHAR NOT NULL,
    keep           BOOLEAN NOT NULL,
    reason         VARCHAR,              -- NULL when kept
    detail         VARCHAR,
    dup_group      VARCHAR               -- exact/near-duplicate group (NULL when unique)
);

-- Great Expectations results, one row per expectation and validated ingest batch.
CREATE TABLE quality_results (
    run_id           VARCHAR NOT NULL,
    workload_id      VARCHAR NOT NULL,
    suite            VARCHAR NOT NULL,
    expectation      VARCHAR NOT NULL,
    column_name      VARCHAR,
    success          BOOLEAN,
    unexpected_count BIGINT,
    element_count    BIGINT,
    "at"             TIMESTAMP NOT NULL,  -- quoted: AT is a keyword in DuckDB
    batch_id         VARCHAR             -- the ingest batch validated (a suite runs once per new batch)
);

-- Distinct PII values scrubbed per type over the run's input interactions.
CREATE TABLE pii_counts (
    run_id      VARCHAR NOT NULL,
    workload_id VARCHAR NOT NULL,
    pii_type    VARCHAR NOT NULL,
    n           BIGINT NOT NULL
);

-- Slice distribution of the training pool before and after the caps (train + val); eval is
-- carved first and never capped. rare = TRUE: below min_slice_count, for the teacher to synthesize.
CREATE TABLE slice_stats (
    run_id      VARCHAR NOT NULL,
    workload_id VARCHAR NOT NULL,
    snapshot_id VARCHAR,
    slice_kind  VARCHAR NOT NULL,        -- label | tool | topic | client
    slice       VARCHAR NOT NULL,
    n_before    BIGINT NOT NULL,
    n_after     BIGINT NOT NULL,
    share_before DOUBLE NOT NULL,
    share_after  DOUBLE NOT NULL,
    rare        BOOLEAN NOT NULL
);

CREATE TABLE prompt_templates (
    workload_id     VARCHAR NOT NULL,
    template_id     VARCHAR NOT NULL,    -- tpl-<sha256 of static_prefix>
    static_prefix   JSON NOT NULL,       -- {"messages": [...], "text_prefix": str | null}
    n_static_tokens INTEGER NOT NULL,
    created_at      TIMESTAMP NOT NULL   -- last time a run confirmed it (latest = current)
);

CREATE TABLE dataset_snapshots (
    snapshot_id      VARCHAR PRIMARY KEY,    -- <workload>.v<N>
    workload_id      VARCHAR NOT NULL,
    content_hash     VARCHAR NOT NULL,       -- sha256 of every example and its split
    config_hash      VARCHAR NOT NULL,       -- sha256 of the workload settings curation depends on
    eval_snapshot_id VARCHAR NOT NULL,       -- the snapshot whose eval split this one reuses (or itself)
    created_at       TIMESTAMP NOT NULL,
    n_train          BIGINT NOT NULL,
    n_val            BIGINT NOT NULL,
    n_eval           BIGINT NOT NULL,
    export_path      VARCHAR
);

CREATE TABLE snapshot_examples (
    snapshot_id     VARCHAR NOT NULL,
    split           VARCHAR NOT NULL,        -- train | val | eval
    example_id      VARCHAR NOT NULL,
    interaction_id  VARCHAR,
    workload_id     VARCHAR NOT NULL,
    messages        JSON NOT NULL,           -- scrubbed, pruned request messages
    target          JSON NOT NULL,           -- scrubbed logged assistant message
    label           VARCHAR,
    gold            VARCHAR,
    slice           VARCHAR,
    client_id       VARCHAR,
    dup_group       VARCHAR,
    tools           JSON,
    response_format JSON,
    synthetic       BOOLEAN NOT NULL DEFAULT FALSE
);
