-- Gold labels from people (`flywheel labels import`), attached to interactions after ingest.
-- Interaction ids are content hashes, so a label lives beside its interaction instead of rewriting
-- interactions.metadata; curation reads it as the row's gold (before metadata.label). One label per
-- (workload, interaction): a later import of the same interaction replaces it.
-- (eval_runs.decision, 0005: promote | reject | insufficient_eval since the gate's power check.)
CREATE TABLE gold_labels (
    workload_id    VARCHAR NOT NULL,
    interaction_id VARCHAR NOT NULL,
    label          VARCHAR NOT NULL,
    import_id      VARCHAR NOT NULL,
    source_ref     VARCHAR NOT NULL,        -- file:line (CSV, JSONL) or file:row (Parquet) of the label
    imported_at    TIMESTAMP NOT NULL,
    PRIMARY KEY (workload_id, interaction_id)
);

-- One row per import: what was read, how it matched, and the full report (JSON).
CREATE TABLE gold_label_imports (
    import_id    VARCHAR PRIMARY KEY,
    workload_id  VARCHAR NOT NULL,
    path         VARCHAR NOT NULL,
    match_on     VARCHAR NOT NULL,          -- prompt | id | column
    key_column   VARCHAR NOT NULL,
    label_column VARCHAR NOT NULL,
    n_rows       INTEGER NOT NULL,
    matched      INTEGER NOT NULL,
    unmatched    INTEGER NOT NULL,
    labeled      INTEGER NOT NULL,          -- interactions that carry a label from this import
    imported_at  TIMESTAMP NOT NULL,
    report       JSON
);
