-- Loss curves of trained candidates (flywheel/train): one row per logged optimizer step.
CREATE TABLE training_steps (
    model_id      VARCHAR NOT NULL,   -- models.model_id
    step          INTEGER NOT NULL,
    loss          DOUBLE,
    learning_rate DOUBLE,
    epoch         DOUBLE,
    "at"          TIMESTAMP NOT NULL,   -- quoted: AT is a DuckDB keyword
    PRIMARY KEY (model_id, step)
);
