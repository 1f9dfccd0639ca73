-- Closing the wheel: feedback from `POST /v1/feedback` and live (shadow) agreement for the dashboard.

-- One row per feedback line of the serve spool (<spool>/.feedback/feedback-*.jsonl). The server
-- cannot know whether request_id exists; ingest joins it to the call's interaction
-- (interactions.metadata.spool_id) and leaves interaction_id NULL while it matches none.
CREATE TABLE feedback (
    feedback_id    VARCHAR PRIMARY KEY,      -- the server's id of the feedback call
    request_id     VARCHAR NOT NULL,         -- x-request-id of the served call
    score          DOUBLE NOT NULL,          -- -1 .. 1 (thumbs down = -1, up = 1)
    correction     VARCHAR,                  -- the right answer (text, or canonical JSON)
    comment        VARCHAR,
    client_id      VARCHAR,
    ts             TIMESTAMP NOT NULL,       -- when the server received it
    source_ref     VARCHAR NOT NULL,         -- file:line of the feedback line
    interaction_id VARCHAR,                  -- NULL: unmatched so far
    workload_id    VARCHAR,
    ingested_at    TIMESTAMP NOT NULL
);

-- Shadow rows carry the gate target in force when they were scored and whether the metric is the
-- workload's primary one (the agreement the gate and the triggers use).
ALTER TABLE shadow_evaluations ADD COLUMN target DOUBLE;
ALTER TABLE shadow_evaluations ADD COLUMN is_primary BOOLEAN;

-- Live agreement per day and model (primary metric), with the gate's target line.
CREATE VIEW v_shadow_agreement AS
SELECT workload_id, day, model_id, metric, value, ci_low, ci_high, n, target
FROM shadow_evaluations
WHERE is_primary IS NOT false;

-- Feedback per workload and day (matched feedback only: unmatched has no workload yet).
CREATE VIEW v_feedback_daily AS
SELECT workload_id, CAST(ts AS DATE) AS day,
       count(*) AS feedback,
       count(*) FILTER (WHERE score > 0) AS positive,
       count(*) FILTER (WHERE score < 0) AS negative,
       count(*) FILTER (WHERE correction IS NOT NULL) AS corrections
FROM feedback
WHERE workload_id IS NOT NULL
GROUP BY ALL;
