-- Partial promotion and per-tool metrics (flywheel/evaluate/cascade.py, partial.py, tool_metrics.py).

-- The share of traffic the projected student answers: a partial promotion's calibrated coverage
-- (models.metrics.serving.coverage), 1 for a full one (flywheel/costs/assumptions.py).
ALTER TABLE cost_assumptions ADD COLUMN student_coverage DOUBLE;

-- Per-tool metrics of tool_call evaluations: one row per (run, model, tool, parameter, metric).
-- tool NULL: overall (decision_accuracy, name_accuracy, coverage); parameter NULL: per tool
-- (name_accuracy, arguments_exact, coverage); else per parameter (exact, f1). n: cases behind the value.
CREATE TABLE tool_evaluations (
    run_id      VARCHAR NOT NULL,
    model_id    VARCHAR NOT NULL,        -- a models.model_id, or 'teacher'
    workload_id VARCHAR NOT NULL,
    tool        VARCHAR,
    parameter   VARCHAR,
    metric      VARCHAR NOT NULL,
    value       DOUBLE,                  -- NULL when there is no case to score
    n           INTEGER NOT NULL,
    "at"        TIMESTAMP NOT NULL
);

-- Each workload's latest evaluation that has per-tool rows.
CREATE VIEW v_tool_metrics AS
WITH latest AS (
    SELECT workload_id, arg_max(run_id, "at") AS run_id FROM tool_evaluations GROUP BY ALL
)
SELECT t.workload_id, t.run_id, t."at" AS evaluated_at, t.model_id, t.model_id = 'teacher' AS is_teacher,
       coalesce(t.tool, '(all)') AS tool, t.parameter, t.metric, t.value, t.n
FROM tool_evaluations t JOIN latest l ON l.workload_id = t.workload_id AND l.run_id = t.run_id;

-- Every evaluated candidate's calibrated cascade: the largest share of traffic it can answer (at
-- confidence >= threshold; claims 'tool_calls': tool-call turns only) while the mix with the teacher
-- meets the gate's target; threshold NULL when no threshold does.
CREATE VIEW v_cascades AS
WITH runs AS (
    SELECT workload_id, run_id, finished_at, decision, winner,
           unnest(from_json(results->'cascades', '["JSON"]')) AS c
    FROM eval_runs
    WHERE json_type(results->'cascades') = 'ARRAY'
)
SELECT workload_id, run_id, finished_at AS evaluated_at, decision, winner, c->>'model' AS model_id,
       c->>'claims' AS claims, c->>'metric' AS metric, TRY_CAST(c->>'floor' AS DOUBLE) AS floor,
       TRY_CAST(c->>'threshold' AS DOUBLE) AS threshold, TRY_CAST(c->>'coverage' AS DOUBLE) AS coverage,
       TRY_CAST(c->>'value' AS DOUBLE) AS mix_value, TRY_CAST(c->>'ci_low' AS DOUBLE) AS mix_ci_low,
       (c->>'model') = winner AND decision = 'promote_partial' AS promoted_partially
FROM runs;

-- The projection of a workload not yet served counts only the traffic its student would answer:
-- saved_per_request = teacher cost per request x student_coverage - the student's cost per request
-- (the student runs on every request to decide). Otherwise as in 0007_costs.sql.
-- To date per workload, break-even, and the 30-day projection at the last 7 days' rate.
CREATE OR REPLACE VIEW v_savings_summary AS
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
    SELECT r.*, a.student_usd_per_1k, a.student_model_id, a.student_coverage,
           r.requests_7d / r.window_days * 30 AS monthly_requests,
           CASE WHEN r.served_requests_7d > 0
                THEN (r.spool_teacher_usd_7d - r.spool_serving_usd_7d) / r.served_requests_7d
                ELSE r.teacher_usd_7d / r.requests_7d * coalesce(a.student_coverage, 1.0)
                     - a.student_usd_per_1k / 1000 END AS saved_per_request
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
       p.student_model_id, p.student_usd_per_1k, p.student_coverage
FROM totals t
LEFT JOIN bounds b USING (workload_id)
LEFT JOIN projection p USING (workload_id);

-- Is the champion still as good as the teacher? Its latest production (shadow) score, else its gate
-- score, must reach the lower bound of the teacher's interval on the eval that promoted it.
CREATE OR REPLACE VIEW v_quality_held AS
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
mix AS (   -- a partial promotion is judged by what it serves: the mix at its calibrated threshold
    SELECT run_id, model_id, mix_value, mix_ci_low FROM v_cascades WHERE promoted_partially
),
scores AS (
    SELECT g.workload_id, g.model_id, g.run_id, g.metric,
           coalesce(any_value(x.mix_value), max(q.value) FILTER (WHERE q.model_id = g.model_id))
               AS champion_value,
           coalesce(any_value(x.mix_ci_low), max(q.ci_low) FILTER (WHERE q.model_id = g.model_id))
               AS champion_ci_low,
           max(q.value) FILTER (WHERE q.is_teacher) AS teacher_value,
           max(q.ci_low) FILTER (WHERE q.is_teacher) AS teacher_ci_low
    FROM gate g JOIN v_model_quality q ON q.run_id = g.run_id AND q.metric = g.metric
    LEFT JOIN mix x ON x.run_id = g.run_id AND x.model_id = g.model_id
    GROUP BY g.workload_id, g.model_id, g.run_id, g.metric
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
