-- Model registry rows. Training (flywheel/train) inserts candidates; the registry
-- (flywheel/registry) moves them between stages and records promotions.
CREATE TABLE models (
    model_id          VARCHAR PRIMARY KEY,   -- <workload>/<candidate>/<version>
    workload_id       VARCHAR NOT NULL,
    name              VARCHAR NOT NULL,      -- candidate name from the config
    kind              VARCHAR NOT NULL,      -- scratch | causal-lm | encoder-classifier
    base              VARCHAR,               -- hub id / local path / 'scratch'
    method            VARCHAR,               -- full | lora | ia3 | prompt-tuning | top-k-layers
    path              VARCHAR NOT NULL,      -- artifact directory under FLYWHEEL_HOME/models
    snapshot_id       VARCHAR,
    params            BIGINT,
    size_bytes        BIGINT,
    config            JSON,
    code_version      VARCHAR,
    teacher           VARCHAR,
    train_seconds     DOUBLE,
    tokens_per_second DOUBLE,
    metrics           JSON,
    stage             VARCHAR NOT NULL DEFAULT 'candidate',  -- candidate | champion | retired
    created_at        TIMESTAMP NOT NULL
);
