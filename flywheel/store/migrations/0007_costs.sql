-- Cost accounting and the ops dashboard (flywheel/costs, dashboards/). The dashboard and `flywheel costs`
-- read only these views; the definitions of every money figure are in flywheel/costs/__init__.py.
-- Days are UTC calendar days of the request timestamp (ingestion time when the log had none).

-- One row per orchestrated flow run (the orchestration stage writes it; the Runs page lists it).
CREATE TABLE flywheel_runs (
    run_id              VARCHAR PRIMARY KEY,
    workload_id         VARCHAR,
    flow                VARCHAR NOT NULL,          -- e.g. flywheel-loop, ingest, curate, label, distill
    started_at          TIMESTAMP NOT NULL,
    finished_at         TIMESTAMP,                 -- NULL while running or when the process died
    status              VARCHAR NOT NULL,          -- running | completed | failed | cancelled
    prefect_flow_run_id VARCHAR,
    summary             JSON
);

-- The prices `flywheel costs` priced a workload with, stored so the dashboard shows the same numbers.
CREATE TABLE cost_assumptions (
    workload_id            VARCHAR PRIMARY KEY,
    teacher_model          VARCHAR,                -- what student-served traffic would have been sent to
    teacher_input_per_1m   DOUBLE,                 -- USD per 1M prompt tokens (NULL: not in the catalog)
    teacher_output_per_1m  DOUBLE,
    hardware_profile       VARCHAR,                -- serving machine (flywheel/evaluate/hardware.yaml)
    hardware_usd_per_hour  DOUBLE,
    training_usd_per_hour  DOUBLE,                 -- prices models.train_seconds without a ledger row
    student_model_id       VARCHAR,                -- the candidate the projection assumes
    student_usd_per_1k     DOUBLE,                 -- its estimated serving cost per 1k requests
    student_cost_basis     VARCHAR NOT NULL,       -- evaluation | throughput | unknown
    updated_at             TIMESTAMP NOT NULL
);

-- Per request: what the teacher would have charged and what serving it really cost.
CREATE VIEW v_request_costs AS
WITH blended AS (   -- fallback teacher rate when the teacher model has no catalog price
    SELECT workload_id,
           sum(cost_usd) / nullif(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)), 0)
               AS usd_per_token
    FROM interactions
    WHERE cost_usd IS NOT NULL AND coalesce(metadata->>'served_by', 'teacher') <> 'student'
    GROUP BY workload_id
),
priced AS (
    SELECT i.id, i.workload_id, i.source, i.model, i.status, i.latency_ms, i.cost_usd,
           CAST(coalesce(i.ts, i.ingested_at) AS DATE) AS day,
           CASE WHEN i.source = 'spool' THEN coalesce(i.metadata->>'served_by', 'teacher')
                ELSE 'production' END AS served_by,
           CASE WHEN i.source = 'spool' AND i.metadata->>'served_by' = 'teacher'
                THEN coalesce(i.metadata->>'fallback_reason', 'unspecified') END AS fallback_reason,
           coalesce(
               (coalesce(i.prompt_tokens, 0) * a.teacher_input_per_1m
                + coalesce(i.completion_tokens, 0) * a.teacher_output_per_1m) / 1e6,
               (coalesce(i.prompt_tokens, 0) + coalesce(i.completion_tokens, 0)) * b.usd_per_token
           ) AS teacher_price_usd,
           a.student_usd_per_1k / 1000 AS student_estimate_usd,
           -- a shadowed call also paid the teacher in the background (quality monitoring)
           CASE WHEN i.source = 'spool'
                THEN coalesce(TRY_CAST(i.metadata->>'shadow_cost_usd' AS DOUBLE), 0) ELSE 0 END AS shadow_usd
    FROM interactions i
    LEFT JOIN cost_assumptions a ON a.workload_id = i.workload_id
    LEFT JOIN blended b ON b.workload_id = i.workload_id
)
SELECT id, workload_id, day, source, served_by, fallback_reason, model, status, latency_ms, shadow_usd,
       CASE WHEN served_by = 'student' THEN teacher_price_usd
            ELSE coalesce(cost_usd, teacher_price_usd) END AS teacher_usd,
       CASE WHEN served_by = 'student' THEN coalesce(cost_usd, student_estimate_usd)
            ELSE coalesce(cost_usd, teacher_price_usd) END + shadow_usd AS served_usd
FROM priced;

-- Every USD the flywheel itself spent, by day: the ledger, plus training priced from wall time for
-- models whose training left no ledger row (train_seconds x training_usd_per_hour).
CREATE VIEW v_cost_items AS
SELECT coalesce(workload_id, '(unassigned)') AS workload_id, CAST("at" AS DATE) AS day, kind, model,
       usd, ref, 'ledger' AS basis
FROM cost_ledger
UNION ALL
SELECT m.workload_id, CAST(m.created_at AS DATE), 'training', m.model_id,
       m.train_seconds * a.training_usd_per_hour / 3600, m.model_id, 'train_seconds'
FROM models m
JOIN cost_assumptions a ON a.workload_id = m.workload_id
WHERE m.train_seconds IS NOT NULL AND a.training_usd_per_hour IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM cost_ledger l WHERE l.kind = 'training' AND l.ref = m.model_id);

CREATE VIEW v_cost_ledger_daily AS
SELECT workload_id, day, kind, basis, count(*) AS entries, sum(usd) AS usd
FROM v_cost_items
GROUP BY ALL;

CREATE VIEW v_daily_traffic AS
SELECT workload_id, day,
       count(*)                                          AS requests,
       count(*) FILTER (WHERE served_by = 'student')     AS student_requests,
       count(*) FILTER (WHERE served_by = 'teacher')     AS fallback_requests,
       count(*) FILTER (WHERE served_by = 'production')  AS production_requests,
       count(*) FILTER (WHERE source = 'spool')          AS served_requests,
       coalesce(sum(teacher_usd), 0)                     AS teacher_usd,
       coalesce(sum(served_usd), 0)                      AS served_usd,
       coalesce(sum(teacher_usd) FILTER (WHERE source = 'spool'), 0) AS spool_teacher_usd,
       coalesce(sum(served_usd) FILTER (WHERE source = 'spool'), 0)  AS spool_served_usd,
       count(*) FILTER (WHERE teacher_usd IS NULL OR served_usd IS NULL) AS unpriced
FROM v_request_costs
GROUP BY ALL;

-- The savings ledger: one row per workload and day, with running totals.
CREATE VIEW v_savings_daily AS
WITH spend AS (
    SELECT workload_id, day,
           coalesce(sum(usd) FILTER (WHERE kind <> 'student_serving'), 0) AS flywheel_usd,
           coalesce(sum(usd) FILTER (WHERE kind = 'student_serving'), 0)  AS serving_ledger_usd
    FROM v_cost_items
    GROUP BY ALL
),
daily AS (
    SELECT coalesce(t.workload_id, s.workload_id) AS workload_id, coalesce(t.day, s.day) AS day,
           coalesce(t.requests, 0) AS requests,
           coalesce(t.student_requests, 0) AS student_requests,
           coalesce(t.fallback_requests, 0) AS fallback_requests,
           coalesce(t.served_requests, 0) AS served_requests,
           coalesce(t.unpriced, 0) AS unpriced,
           coalesce(t.teacher_usd, 0) AS teacher_usd,
           coalesce(t.served_usd, 0) + coalesce(s.serving_ledger_usd, 0) AS serving_usd,
           coalesce(t.spool_teacher_usd, 0) AS spool_teacher_usd,
           coalesce(t.spool_served_usd, 0) + coalesce(s.serving_ledger_usd, 0) AS spool_serving_usd,
           coalesce(s.flywheel_usd, 0) AS flywheel_usd
    FROM v_daily_traffic t
    FULL OUTER JOIN spend s ON s.workload_id = t.workload_id AND s.day = t.day
),
ledger AS (
    SELECT *, serving_usd + flywheel_usd AS actual_usd,
           teacher_usd - serving_usd - flywheel_usd AS saved_usd,
           (teacher_usd - serving_usd - flywheel_usd) / nullif(teacher_usd, 0) AS saved_pct
    FROM daily
)
SELECT *,
       sum(teacher_usd) OVER w                 AS cum_teacher_usd,
       sum(actual_usd) OVER w                  AS cum_actual_usd,
       sum(saved_usd) OVER w                   AS cum_saved_usd,
       sum(teacher_usd - serving_usd) OVER w   AS cum_serving_saved_usd,
       sum(flywheel_usd) OVER w                AS cum_flywheel_usd,
       sum(teacher_usd - serving_usd) OVER w > 0
           AND sum(teacher_usd - serving_usd) OVER w >= sum(flywheel_usd) OVER w AS broke_even
FROM ledger
WINDOW w AS (PARTITION BY workload_id ORDER BY day ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW);

-- To date per workload, break-even, and the 30-day projection at the last 7 days' rate.
CREATE VIEW v_savings_summary AS
WITH bounds AS (
    SELECT workload_id, min(day) AS first_day, max(day) AS last_day
    FROM v_savings_daily WHERE requests > 0 GROUP BY ALL
),
recent AS (   -- the 7 days ending on the workload's last day with traffic
    SELECT d.workload_id,
           least(7, b.last_day - b.first_day + 1) AS window_days,
           sum(d.requests) AS requests_7d,
           sum(d.served_requests) AS served_requests_7d,
           sum(d.teacher_usd) AS teacher_usd_7d,
           sum(d.spool_teacher_usd) AS spool_teacher_usd_7d,
           sum(d.spool_serving_usd) AS spool_serving_usd_7d
    FROM v_savings_daily d JOIN bounds b USING (workload_id)
    WHERE d.day BETWEEN b.last_day - 6 AND b.last_day
    GROUP BY ALL
),
totals AS (
    SELECT workload_id,
           sum(requests) AS requests, sum(student_requests) AS student_requests,
           sum(fallback_requests) AS fallback_requests, sum(served_requests) AS served_requests,
           sum(unpriced) AS unpriced,
           sum(teacher_usd) AS teacher_usd, sum(serving_usd) AS serving_usd,
           sum(flywheel_usd) AS flywheel_usd, sum(actual_usd) AS actual_usd, sum(saved_usd) AS saved_usd,
           min(day) FILTER (WHERE broke_even) AS break_even_day
    FROM v_savings_daily GROUP BY ALL
),
projection AS (
    SELECT r.*, a.student_usd_per_1k, a.student_model_id,
           r.requests_7d / r.window_days * 30 AS monthly_requests,
           CASE WHEN r.served_requests_7d > 0
                THEN (r.spool_teacher_usd_7d - r.spool_serving_usd_7d) / r.served_requests_7d
                ELSE r.teacher_usd_7d / r.requests_7d - a.student_usd_per_1k / 1000 END AS saved_per_request
    FROM recent r LEFT JOIN cost_assumptions a USING (workload_id)
)
SELECT t.workload_id, t.requests, t.student_requests, t.fallback_requests, t.served_requests, t.unpriced,
       t.student_requests / nullif(t.requests, 0) AS student_share,
       t.fallback_requests / nullif(t.student_requests + t.fallback_requests, 0) AS fallback_rate,
       t.teacher_usd, t.serving_usd, t.flywheel_usd, t.actual_usd, t.saved_usd,
       t.saved_usd / nullif(t.teacher_usd, 0) AS saved_pct,
       b.first_day, b.last_day, t.break_even_day,
       p.window_days, p.requests_7d, p.monthly_requests, p.saved_per_request,
       p.saved_per_request * p.monthly_requests AS projected_monthly_saved_usd,
       CASE WHEN p.served_requests_7d > 0 THEN 'served'
            WHEN p.saved_per_request IS NOT NULL THEN 'ingested'
            WHEN p.requests_7d > 0 THEN 'no_candidate_cost' END AS projection_basis,
       p.student_model_id, p.student_usd_per_1k
FROM totals t
LEFT JOIN bounds b USING (workload_id)
LEFT JOIN projection p USING (workload_id);

-- Whole-split scores per evaluated model (the champion candidates and the teacher), with intervals.
CREATE VIEW v_model_quality AS
SELECT e.workload_id, e.run_id, r.finished_at AS evaluated_at, e.model_id,
       m.model_id IS NULL AS is_teacher, m.created_at AS model_created_at,
       e.metric, e.value, e.ci_low, e.ci_high, e.n, e.reference
FROM evaluations e
JOIN eval_runs r ON r.run_id = e.run_id
LEFT JOIN models m ON m.model_id = e.model_id
WHERE e.slice IS NULL;

CREATE VIEW v_gate_decisions AS
SELECT workload_id, run_id, started_at, finished_at, decision, winner,
       array_to_string(from_json(reasons, '["VARCHAR"]'), ', ') AS reasons,
       coalesce(results->>'primary_metric', results->>'$.gate.primary_metric') AS primary_metric
FROM eval_runs;

CREATE VIEW v_promotions AS
SELECT workload_id, "at" AS promoted_at, action, model_id, previous_model_id, reason, run_id
FROM promotions;

-- Is the champion still as good as the teacher? Its latest production (shadow) score, else its gate
-- score, must reach the lower bound of the teacher's interval on the eval that promoted it.
CREATE VIEW v_quality_held AS
WITH champion AS (
    SELECT workload_id, arg_max(model_id, "at") AS model_id, arg_max(run_id, "at") AS run_id
    FROM promotions GROUP BY ALL
),
gate AS (
    SELECT c.workload_id, c.model_id, q.run_id,
           coalesce(g.primary_metric, min(q.metric) OVER (PARTITION BY c.workload_id)) AS metric
    FROM champion c
    JOIN v_model_quality q ON q.workload_id = c.workload_id AND q.model_id = c.model_id
        AND q.run_id = coalesce(c.run_id, q.run_id)
    LEFT JOIN v_gate_decisions g ON g.run_id = q.run_id
    QUALIFY row_number() OVER (PARTITION BY c.workload_id ORDER BY q.evaluated_at DESC) = 1
),
scores AS (
    SELECT g.workload_id, g.model_id, g.run_id, g.metric,
           max(q.value) FILTER (WHERE q.model_id = g.model_id) AS champion_value,
           max(q.ci_low) FILTER (WHERE q.model_id = g.model_id) AS champion_ci_low,
           max(q.value) FILTER (WHERE q.is_teacher) AS teacher_value,
           max(q.ci_low) FILTER (WHERE q.is_teacher) AS teacher_ci_low
    FROM gate g JOIN v_model_quality q ON q.run_id = g.run_id AND q.metric = g.metric
    GROUP BY ALL
),
shadow AS (
    SELECT workload_id, model_id, metric, arg_max(value, day) AS shadow_value, max(day) AS shadow_day
    FROM shadow_evaluations GROUP BY ALL
)
SELECT s.workload_id, s.model_id AS champion_model_id, s.run_id, s.metric,
       s.champion_value, s.champion_ci_low, s.teacher_value, s.teacher_ci_low,
       sh.shadow_value, sh.shadow_day,
       coalesce(sh.shadow_value, s.champion_value) >= s.teacher_ci_low AS quality_held
FROM scores s
LEFT JOIN shadow sh ON sh.workload_id = s.workload_id AND sh.model_id = s.model_id AND sh.metric = s.metric;

CREATE VIEW v_overview AS
SELECT s.workload_id, s.requests, s.student_share, s.fallback_rate, s.teacher_usd, s.actual_usd,
       s.saved_usd, s.saved_pct, s.break_even_day, s.projected_monthly_saved_usd,
       q.champion_model_id, q.metric, q.champion_value, q.teacher_value, q.shadow_value, q.quality_held
FROM v_savings_summary s
LEFT JOIN v_quality_held q USING (workload_id);

CREATE VIEW v_overview_totals AS
SELECT sum(requests) AS requests,
       sum(student_requests) / nullif(sum(requests), 0) AS student_share,
       sum(teacher_usd) AS teacher_usd, sum(actual_usd) AS actual_usd, sum(saved_usd) AS saved_usd,
       sum(saved_usd) / nullif(sum(teacher_usd), 0) AS saved_pct,
       sum(projected_monthly_saved_usd) AS projected_monthly_saved_usd,
       (SELECT count(*) FILTER (WHERE quality_held) FROM v_quality_held) AS workloads_quality_held,
       (SELECT count(*) FROM v_quality_held) AS workloads_with_champion
FROM v_savings_summary;

CREATE VIEW v_fallbacks_daily AS
SELECT workload_id, day,
       count(*) AS requests,
       count(*) FILTER (WHERE served_by = 'student') AS student_requests,
       count(*) FILTER (WHERE served_by = 'teacher') AS fallback_requests,
       count(*) FILTER (WHERE served_by = 'teacher') / count(*) AS fallback_rate
FROM v_request_costs
WHERE source = 'spool'
GROUP BY ALL;

CREATE VIEW v_fallback_reasons AS
WITH counts AS (
    SELECT workload_id, fallback_reason, count(*) AS requests
    FROM v_request_costs WHERE served_by = 'teacher' GROUP BY ALL
)
SELECT *, requests / sum(requests) OVER (PARTITION BY workload_id) AS share FROM counts;

CREATE VIEW v_latency_daily AS
SELECT workload_id, day, served_by, count(*) AS requests,
       quantile_cont(latency_ms, 0.5) AS p50_ms, quantile_cont(latency_ms, 0.95) AS p95_ms
FROM v_request_costs
WHERE latency_ms IS NOT NULL
GROUP BY ALL;

-- The latest curation run per workload: what the rest of the funnel and the slice charts show.
CREATE VIEW v_latest_curation AS
SELECT * FROM curation_runs
QUALIFY row_number() OVER (PARTITION BY workload_id ORDER BY finished_at DESC, run_id) = 1;

-- Slice distribution of the training pool before and after curation's caps (latest run).
CREATE VIEW v_slices AS
SELECT s.workload_id, s.run_id, c.finished_at AS curated_at, s.snapshot_id, s.slice_kind, s.slice,
       s.n_before, s.n_after, s.share_before, s.share_after, s.rare
FROM slice_stats s
JOIN v_latest_curation c ON c.run_id = s.run_id;

-- Why the latest curation run rejected rows (the first failing check per interaction).
CREATE VIEW v_curation_rejections AS
SELECT v.workload_id, v.run_id, v.reason, count(*) AS rows
FROM curation_verdicts v
JOIN v_latest_curation c ON c.run_id = v.run_id
WHERE NOT v.keep
GROUP BY ALL;

-- Rows surviving each stage: everything logged, ingested, answered ok, kept by the latest curation
-- run (its snapshot), labeled.
CREATE VIEW v_funnel AS
SELECT workload_id, 1 AS stage_order, 'logged' AS stage, count(*) AS rows
FROM (SELECT workload_id FROM interactions
      UNION ALL
      SELECT workload_id FROM quarantine WHERE stage = 'ingest' AND workload_id IS NOT NULL)
GROUP BY ALL
UNION ALL
SELECT workload_id, 2, 'ingested', count(*) FROM interactions GROUP BY ALL
UNION ALL
SELECT workload_id, 3, 'status ok', count(*) FILTER (WHERE status = 'ok') FROM interactions GROUP BY ALL
UNION ALL
SELECT workload_id, 4, 'curated', n_out FROM v_latest_curation
UNION ALL
SELECT workload_id, 5, 'labeled', count(DISTINCT example_id) FROM labels GROUP BY ALL;

-- Flow runs, plus the stage runs that record themselves (labeling, evaluation).
CREATE VIEW v_runs AS
SELECT run_id, workload_id, flow, started_at, finished_at,
       date_diff('millisecond', started_at, finished_at) / 1000.0 AS duration_s,
       status, prefect_flow_run_id, CAST(summary AS VARCHAR) AS summary, 'flywheel_runs' AS recorded_in
FROM flywheel_runs
UNION ALL
SELECT run_id, workload_id, 'label', started_at, finished_at,
       date_diff('millisecond', started_at, finished_at) / 1000.0,
       coalesce(stopped_reason, CASE WHEN finished_at IS NULL THEN 'running' END),
       NULL,
       format('{} {}: {} labeled, {} cached, {} failed, ${:.4f}', mode, run_id[:8], labeled, cached, failed,
              cost_usd),
       'label_runs'
FROM label_runs
UNION ALL
SELECT run_id, workload_id, 'evaluate', started_at, finished_at,
       date_diff('millisecond', started_at, finished_at) / 1000.0,
       'completed', NULL,
       decision || coalesce(' ' || winner, '')
           || coalesce(': ' || nullif(array_to_string(from_json(reasons, '["VARCHAR"]'), ', '), ''), ''),
       'eval_runs'
FROM eval_runs;
