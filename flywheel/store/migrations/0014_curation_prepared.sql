-- Incremental curation (flywheel/quality/prepared.py): every interaction's prepared row as the last
-- curate left it after its row checks (pruned, PII-scrubbed messages and answer, label, gold, PII
-- counts, token counts, check verdict and reason), so the next curate prepares and checks only rows
-- without one. prep_key hashes what preparation depends on (the workload's config, the prompt
-- template, the cache format); input_key hashes what may change on a logged call after ingest
-- (feedback, metadata, an imported gold label). A row whose keys differ is prepared again.
-- `flywheel forget` deletes a forgotten interaction's row here too.
CREATE TABLE curation_prepared (
    workload_id    VARCHAR NOT NULL,
    interaction_id VARCHAR NOT NULL,
    prep_key       VARCHAR NOT NULL,
    input_key      VARCHAR NOT NULL,
    prepared       VARCHAR NOT NULL,    -- the slimmed CurationRow as JSON
    PRIMARY KEY (workload_id, interaction_id)
);
