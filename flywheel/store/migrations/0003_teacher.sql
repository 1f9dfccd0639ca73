-- Teacher stage: the answer cache, labels, the cost ledger and label runs. See flywheel/teacher.
-- Keys are content hashes, so re-running a label run inserts nothing twice (ON CONFLICT DO NOTHING).

-- Every teacher answer, stored as it arrives; a re-run finds it here and makes no call.
CREATE TABLE teacher_cache (
    cache_key         VARCHAR PRIMARY KEY,   -- sha256(model, messages, params, prompt version)
    model             VARCHAR NOT NULL,      -- the model asked (the response's model is in response)
    request           JSON NOT NULL,         -- the chat.completions payload sent (never headers or keys)
    response          JSON NOT NULL,         -- {"message", "finish_reason", "model", "logprobs"?, "latency_ms"}
    prompt_tokens     INTEGER,
    completion_tokens INTEGER,
    cost_usd          DOUBLE,
    created_at        TIMESTAMP NOT NULL
);

-- Targets for training: one row per (example, mode, teacher, prompt version, settings).
CREATE TABLE labels (
    label_id       VARCHAR PRIMARY KEY,      -- sha256(workload, example, mode, model, prompt version, settings)
    example_id     VARCHAR NOT NULL,
    workload_id    VARCHAR NOT NULL,
    snapshot_id    VARCHAR,
    mode           VARCHAR NOT NULL,         -- replay | relabel | synthesize
    teacher_model  VARCHAR,                  -- NULL for replay (the logged production model answered)
    prompt_version VARCHAR,
    messages       JSON,                     -- the input messages (set for synthetic examples)
    target         JSON NOT NULL,            -- the assistant message to learn
    label          VARCHAR,                  -- task-level answer (class, canonical JSON, tool call, text)
    confidence     DOUBLE,                   -- k-sample vote agreement (1.0 for replay / single sample)
    votes          JSON,                     -- {label: count}
    logprobs       JSON,                     -- top-k per token when the endpoint returned logprobs
    cost_usd       DOUBLE,                   -- what the answers behind this label cost when first paid
    synthetic      BOOLEAN NOT NULL DEFAULT FALSE,
    slice          VARCHAR,
    created_at     TIMESTAMP NOT NULL
);

-- Money spent, one row per paid call (teacher) or job (training, serving).
CREATE TABLE cost_ledger (
    entry_id          VARCHAR PRIMARY KEY,
    workload_id       VARCHAR,
    run_id            VARCHAR,
    kind              VARCHAR NOT NULL,      -- teacher_inference | labeling | training | evaluation | student_serving
    model             VARCHAR,
    prompt_tokens     BIGINT,
    completion_tokens BIGINT,
    usd               DOUBLE NOT NULL,
    ref               VARCHAR,               -- what was paid for (a teacher cache key, a model id, ...)
    "at"              TIMESTAMP NOT NULL     -- quoted: AT is a keyword in DuckDB
);

CREATE TABLE label_runs (
    run_id         VARCHAR PRIMARY KEY,
    workload_id    VARCHAR NOT NULL,
    mode           VARCHAR NOT NULL,
    started_at     TIMESTAMP NOT NULL,
    finished_at    TIMESTAMP,                -- NULL while running or when the process died
    labeled        BIGINT NOT NULL DEFAULT 0,
    cached         BIGINT NOT NULL DEFAULT 0,
    calls          BIGINT NOT NULL DEFAULT 0,
    failed         BIGINT NOT NULL DEFAULT 0,
    cost_usd       DOUBLE NOT NULL DEFAULT 0,
    stopped_reason VARCHAR                   -- completed | budget | interrupted | error
);
