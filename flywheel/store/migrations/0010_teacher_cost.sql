-- One teacher cost model (flywheel/costs/teacher_cost.py): a request's tokens are its logged usage,
-- else its full logged request and answer counted with the model family's tokenizer (token_counts);
-- its price is read at query time from model_prices (the catalog plus flywheel.yaml `prices:`, written
-- on every refresh), so a price added later re-prices history. Stats, costs, evaluate and the dashboard
-- all read v_request_costs.

-- Counted tokens of interactions that logged no usage (content-addressed ids: a count never goes stale).
CREATE TABLE token_counts (
    id                VARCHAR PRIMARY KEY,     -- interactions.id or served_calls.id
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    method            VARCHAR NOT NULL,        -- tiktoken:o200k_base | quicktok:llama3 | estimate:chars/4 | error
    counted_at        TIMESTAMP NOT NULL
);

-- Every model name seen in traffic (and each configured teacher) with the catalog entry it resolved to.
CREATE TABLE model_prices (
    model          VARCHAR PRIMARY KEY,        -- as logged
    price_key      VARCHAR,                    -- the catalog entry (NULL: unpriced)
    input_per_1m   DOUBLE,
    output_per_1m  DOUBLE,
    as_of          VARCHAR,
    source         VARCHAR,                    -- URL, or "config"
    updated_at     TIMESTAMP NOT NULL
);

-- Served traffic is counted where it happens: every call `flywheel serve` answered (student,
-- fallback, shadowed), read from the serve spool by `flywheel costs`/`stats` (flywheel/costs/served.py),
-- one row per call: identical repeated calls each count (dedup is for training data, never for money).
-- The money views read `v_traffic`: production traffic from interactions, served traffic from
-- served_calls (spool lines ingested into interactions stay training data only).

CREATE TABLE served_calls (
    id                VARCHAR PRIMARY KEY,   -- 'served:' || the call's request id
    request_id        VARCHAR NOT NULL,
    workload_id       VARCHAR NOT NULL,
    client_id         VARCHAR,
    ts                TIMESTAMP,
    model             VARCHAR,               -- who answered: the student's model id or the teacher's model
    status            VARCHAR NOT NULL,      -- ok | error (a refused call is not billed)
    request           JSON NOT NULL,         -- as the application sent it: what the teacher would have read
    response          JSON NOT NULL,         -- {"message": ...} or {"error": ...}
    prompt_tokens     INTEGER,               -- the teacher's usage when it answered; NULL: counted (token_counts)
    completion_tokens INTEGER,
    latency_ms        DOUBLE,
    cost_usd          DOUBLE,                -- what answering cost: student compute, or the teacher's bill
    metadata          JSON,                  -- served_by, route, fallback_reason, shadow_cost_usd
    spool_ref         VARCHAR NOT NULL,      -- file:line
    synced_at         TIMESTAMP NOT NULL
);

-- Spool files already read (append-only files: one whose size and mtime did not change is skipped).
CREATE TABLE served_spool_files (
    path      VARCHAR PRIMARY KEY,
    size      BIGINT NOT NULL,
    mtime     DOUBLE NOT NULL,
    lines     BIGINT NOT NULL,
    synced_at TIMESTAMP NOT NULL
);

CREATE VIEW v_traffic AS
SELECT id, workload_id, client_id, source, model, status, latency_ms, cost_usd, ts, ingested_at, metadata,
       prompt_tokens, completion_tokens, request, response
FROM interactions WHERE source <> 'spool'
UNION ALL
SELECT id, workload_id, client_id, 'spool' AS source, model, status, latency_ms, cost_usd, ts,
       synced_at AS ingested_at, metadata, prompt_tokens, completion_tokens, request, response
FROM served_calls;

CREATE VIEW v_interaction_tokens AS
SELECT i.id, i.workload_id, i.model, i.status,
       coalesce(i.prompt_tokens, t.prompt_tokens) AS prompt_tokens,
       coalesce(i.completion_tokens, t.completion_tokens) AS completion_tokens,
       CASE WHEN i.prompt_tokens IS NOT NULL AND i.completion_tokens IS NOT NULL THEN 'usage'
            ELSE t.method END AS token_method  -- NULL: not counted yet (no refresh since ingest)
FROM interactions i
LEFT JOIN token_counts t ON t.id = i.id;

-- Per request: what the teacher charged (or would have) and what serving it really cost.
-- teacher_usd: a request the teacher answered costs its own model's catalog price, else its logged
-- cost_usd; a student-served request costs the workload teacher's price (cost_assumptions), else the
-- workload's logged USD per token. No price, or tokens unknown: NULL (unpriced), never 0.
CREATE OR REPLACE VIEW v_request_costs AS
WITH tokens AS (   -- as v_interaction_tokens, with the columns pricing needs
    SELECT i.*,
           coalesce(i.prompt_tokens, c.prompt_tokens) AS tokens_in,
           coalesce(i.completion_tokens, c.completion_tokens) AS tokens_out,
           CASE WHEN i.prompt_tokens IS NOT NULL AND i.completion_tokens IS NOT NULL THEN 'usage'
                ELSE c.method END AS token_method
    FROM v_traffic i LEFT JOIN token_counts c ON c.id = i.id
),
blended AS (   -- fallback teacher rate when the teacher model has no catalog price: logged USD over
               -- logged usage (before 0008, ingestion wrote $0 for calls without usage)
    SELECT workload_id, sum(cost_usd) / nullif(sum(prompt_tokens + completion_tokens), 0) AS usd_per_token
    FROM tokens
    WHERE cost_usd IS NOT NULL AND token_method = 'usage'
      AND coalesce(metadata->>'served_by', 'teacher') <> 'student'
    GROUP BY workload_id
),
priced AS (
    SELECT t.id, t.workload_id, t.source, t.model, t.status, t.latency_ms, t.cost_usd,
           t.tokens_in AS prompt_tokens, t.tokens_out AS completion_tokens, t.token_method,
           CAST(coalesce(t.ts, t.ingested_at) AS DATE) AS day,
           CASE WHEN t.source = 'spool' THEN coalesce(t.metadata->>'served_by', 'teacher')
                ELSE 'production' END AS served_by,
           -- json_extract_string, not ->>: DuckDB 1.5.5 (the DuckLake profile) fails to bind `->> =` here
           -- ("Failed to cast value to numerical ... source column metadata"); same rows on 2.0.
           CASE WHEN t.source = 'spool' AND json_extract_string(t.metadata, '$.served_by') = 'teacher'
                THEN coalesce(t.metadata->>'fallback_reason', 'unspecified') END AS fallback_reason,
           (t.tokens_in * m.input_per_1m + t.tokens_out * m.output_per_1m) / 1e6 AS model_price_usd,
           m.price_key,
           (t.tokens_in * a.teacher_input_per_1m + t.tokens_out * a.teacher_output_per_1m) / 1e6
               AS teacher_price_usd,
           (t.tokens_in + t.tokens_out) * b.usd_per_token AS blended_usd,
           a.student_usd_per_1k / 1000 AS student_estimate_usd,
           -- a shadowed call also paid the teacher in the background (quality monitoring)
           CASE WHEN t.source = 'spool'
                THEN coalesce(TRY_CAST(t.metadata->>'shadow_cost_usd' AS DOUBLE), 0) ELSE 0 END AS shadow_usd
    FROM tokens t
    LEFT JOIN model_prices m ON m.model = t.model
    LEFT JOIN cost_assumptions a ON a.workload_id = t.workload_id
    LEFT JOIN blended b ON b.workload_id = t.workload_id
),
costed AS (
    SELECT *,
           CASE WHEN served_by = 'student' THEN coalesce(teacher_price_usd, blended_usd)
                ELSE coalesce(model_price_usd, cost_usd) END AS teacher_usd,
           CASE WHEN served_by = 'student' THEN
                    CASE WHEN teacher_price_usd IS NOT NULL THEN 'teacher_catalog'
                         WHEN blended_usd IS NOT NULL THEN 'logged_rate' END
                WHEN model_price_usd IS NOT NULL THEN 'catalog'
                WHEN cost_usd IS NOT NULL THEN 'logged' END AS price_basis
    FROM priced
)
SELECT id, workload_id, day, source, served_by, fallback_reason, model, status, latency_ms, shadow_usd,
       teacher_usd,
       CASE WHEN served_by = 'student' THEN coalesce(cost_usd, student_estimate_usd)
            ELSE teacher_usd END + shadow_usd AS served_usd,
       prompt_tokens, completion_tokens, token_method, price_key, price_basis
FROM costed;

-- Models with traffic and no price: `flywheel stats/costs/evaluate` warn with the config line that fixes it.
CREATE VIEW v_unpriced_models AS
SELECT i.workload_id, i.model, count(*) AS requests
FROM v_traffic i
LEFT JOIN model_prices m ON m.model = i.model
WHERE i.model IS NOT NULL AND m.input_per_1m IS NULL
  AND coalesce(i.metadata->>'served_by', 'teacher') <> 'student'
GROUP BY ALL;

CREATE OR REPLACE VIEW v_workload_stats AS
WITH costs AS (
    SELECT workload_id,
           coalesce(sum(prompt_tokens), 0)              AS prompt_tokens,
           coalesce(sum(completion_tokens), 0)          AS completion_tokens,
           coalesce(sum(teacher_usd), 0)                AS teacher_usd,
           coalesce(sum(served_usd), 0)                 AS cost_usd,
           count(*) FILTER (WHERE teacher_usd IS NULL OR served_usd IS NULL) AS unpriced,
           count(*) FILTER (WHERE token_method IS NOT NULL AND token_method <> 'usage') AS counted_tokens
    FROM v_request_costs GROUP BY ALL
)
SELECT i.workload_id,
       count(*)                                        AS interactions,
       count(*) FILTER (WHERE status = 'ok')           AS ok,
       count(*) FILTER (WHERE status <> 'ok')          AS errors,
       count(DISTINCT client_id)                       AS clients,
       min(ts)                                         AS first_ts,
       max(ts)                                         AS last_ts,
       any_value(c.prompt_tokens)                      AS prompt_tokens,
       any_value(c.completion_tokens)                  AS completion_tokens,
       any_value(c.cost_usd)                           AS cost_usd,
       any_value(c.unpriced)                           AS unpriced,
       any_value(c.teacher_usd)                        AS teacher_usd,
       any_value(c.teacher_usd) / count(*)             AS teacher_usd_per_request,
       any_value(c.counted_tokens)                     AS counted_tokens
FROM interactions i
JOIN costs c USING (workload_id)
GROUP BY i.workload_id;
