-- Evaluation, promotion gate and shadow evaluation (flywheel/evaluate, flywheel/registry).
-- One row per (run, model, metric, slice): every score the gate used is traceable to a row here.
-- `at` is a keyword in DuckDB 2.0: write it double-quoted ("at") in SQL.
CREATE TABLE evaluations (
    eval_id     VARCHAR NOT NULL,        -- sha256(run_id, model_id, metric, slice)
    run_id      VARCHAR NOT NULL,
    model_id    VARCHAR NOT NULL,        -- a models.model_id, or the teacher's name ('teacher')
    workload_id VARCHAR NOT NULL,
    snapshot_id VARCHAR,
    metric      VARCHAR NOT NULL,
    slice       VARCHAR,                 -- NULL = the whole eval split
    value       DOUBLE,                  -- NULL when undefined (e.g. no examples of that kind)
    ci_low      DOUBLE,
    ci_high     DOUBLE,
    n           INTEGER NOT NULL,
    reference   VARCHAR NOT NULL,        -- gold | teacher
    "at"        TIMESTAMP NOT NULL
);

CREATE TABLE eval_runs (
    run_id      VARCHAR PRIMARY KEY,
    workload_id VARCHAR NOT NULL,
    snapshot_id VARCHAR,
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP NOT NULL,
    decision    VARCHAR NOT NULL,        -- promote | reject
    winner      VARCHAR,                 -- the promoted model_id; NULL on reject
    reasons     JSON NOT NULL,           -- stable reason codes, e.g. ["ci_low_below_threshold"]
    results     JSON NOT NULL            -- per-model summaries (latency, cost) and every gate check
);

CREATE TABLE promotions (
    promotion_id      VARCHAR PRIMARY KEY,
    workload_id       VARCHAR NOT NULL,
    model_id          VARCHAR NOT NULL,  -- the champion after this action
    previous_model_id VARCHAR,           -- the champion before it (NULL for the first)
    action            VARCHAR NOT NULL,  -- promote | rollback | manual
    reason            VARCHAR NOT NULL,
    run_id            VARCHAR,           -- the eval_runs row behind an automatic promotion
    "at"              TIMESTAMP NOT NULL
);

CREATE TABLE shadow_evaluations (
    day         DATE NOT NULL,
    workload_id VARCHAR NOT NULL,
    model_id    VARCHAR NOT NULL,
    metric      VARCHAR NOT NULL,
    value       DOUBLE,
    ci_low      DOUBLE,
    ci_high     DOUBLE,
    n           INTEGER NOT NULL
);
