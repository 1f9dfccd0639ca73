-- The ops dashboard's headline, serve health and readable runs (dashboards/pages/overview.py, runs.py).
-- Money stays in SQL: the dashboard formats these rows and never adds them up itself. The table macros
-- take an inclusive day range (UTC calendar days, as every money view); NULL means unbounded, so
-- `headline(NULL, NULL)` is all history. Same definitions as v_savings_daily: over all history,
-- headline.net_saved_usd equals sum(v_savings_daily.saved_usd) (production traffic nets to zero).

-- Days that have traffic or spend: the dashboard's time axis spans these and skips long empty gaps.
CREATE VIEW v_data_days AS
SELECT day, sum(requests) AS requests, sum(served_requests) AS served_requests,
       sum(flywheel_usd) AS flywheel_usd
FROM v_savings_daily
WHERE day IS NOT NULL
GROUP BY ALL;

-- Headline tiles over [since, until]:
--   avoided_usd: what every call `flywheel serve` answered would have cost sent to the teacher (the
--     application's teacher bill the flywheel took over); student_avoided_usd is the students' part.
--   student_fallback_usd: what serving them cost instead: student compute (plus the student_serving
--     ledger and background shadow checks) and the teacher's bill for the fallbacks.
--   flywheel_usd: the flywheel's own spend (labeling, training, evaluation, teacher inference).
--   net_saved_usd = avoided_usd - student_fallback_usd - flywheel_usd.
CREATE MACRO headline(since, until) AS TABLE
WITH served AS (
    SELECT count(*) AS served_requests,
           count(*) FILTER (WHERE served_by = 'student') AS student_requests,
           count(*) FILTER (WHERE served_by = 'teacher') AS fallback_requests,
           count(*) FILTER (WHERE teacher_usd IS NULL OR served_usd IS NULL) AS unpriced_requests,
           coalesce(sum(teacher_usd), 0) AS avoided_usd,
           coalesce(sum(teacher_usd) FILTER (WHERE served_by = 'student'), 0) AS student_avoided_usd,
           coalesce(sum(served_usd) FILTER (WHERE served_by = 'student'), 0) AS student_usd,
           coalesce(sum(served_usd) FILTER (WHERE served_by = 'teacher'), 0) AS fallback_usd
    FROM v_request_costs
    WHERE source = 'spool'
      AND day BETWEEN coalesce(since, DATE '0001-01-01') AND coalesce(until, DATE '9999-12-31')
),
spend AS (
    SELECT coalesce(sum(usd) FILTER (WHERE kind <> 'student_serving'), 0) AS flywheel_usd,
           coalesce(sum(usd) FILTER (WHERE kind = 'student_serving'), 0) AS serving_ledger_usd
    FROM v_cost_items
    WHERE day BETWEEN coalesce(since, DATE '0001-01-01') AND coalesce(until, DATE '9999-12-31')
)
SELECT served_requests, student_requests, fallback_requests, unpriced_requests,
       avoided_usd, student_avoided_usd,
       student_usd + serving_ledger_usd AS student_usd, fallback_usd,
       student_usd + serving_ledger_usd + fallback_usd AS student_fallback_usd,
       flywheel_usd,
       avoided_usd - (student_usd + serving_ledger_usd + fallback_usd) - flywheel_usd AS net_saved_usd,
       student_requests / nullif(served_requests, 0) AS student_share
FROM served, spend;

-- Break-even and projection over all history (a range filter does not move when the wheel paid off).
-- break_even_day: the first day of the latest stretch on which cumulative net savings stayed positive;
-- while the total is not positive, projected_break_even_day extrapolates at the projection's rate.
-- The projection is v_savings_summary's per workload: 'served' = the last 7 days of served traffic,
-- 'hypothetical' = no student serves the workload yet (ingested traffic at the candidate's cost).
CREATE VIEW v_headline_outlook AS
WITH daily AS (
    SELECT day, sum(saved_usd) AS saved_usd FROM v_savings_daily GROUP BY ALL
),
cumulative AS (
    SELECT day, sum(saved_usd) OVER (ORDER BY day) AS cum_saved_usd FROM daily
),
history AS (
    SELECT min(day) AS first_day, max(day) AS last_day,
           arg_max(cum_saved_usd, day) AS net_to_date_usd,
           max(day) FILTER (WHERE cum_saved_usd <= 0) AS last_unpaid_day
    FROM cumulative
),
paid AS (
    SELECT min(c.day) AS break_even_day
    FROM cumulative c, history h
    WHERE h.net_to_date_usd > 0 AND c.day > coalesce(h.last_unpaid_day, DATE '0001-01-01')
),
projection AS (
    SELECT sum(projected_monthly_saved_usd) AS projected_monthly_saved_usd,
           count(*) FILTER (WHERE projection_basis = 'served') AS served_workloads,
           count(*) FILTER (WHERE projection_basis = 'ingested') AS hypothetical_workloads,
           string_agg(workload_id, ', ' ORDER BY workload_id) FILTER (WHERE projection_basis = 'served')
               AS served_list,
           string_agg(workload_id, ', ' ORDER BY workload_id) FILTER (WHERE projection_basis = 'ingested')
               AS hypothetical_list,
           string_agg(workload_id, ', ' ORDER BY workload_id)
               FILTER (WHERE projection_basis = 'no_candidate_cost') AS unprojected_list,
           max(window_days) AS window_days, max(last_day) AS window_end
    FROM v_savings_summary
    WHERE projection_basis IS NOT NULL
)
SELECT h.first_day, h.last_day, h.net_to_date_usd, p2.break_even_day,
       CASE WHEN h.net_to_date_usd <= 0 AND p.projected_monthly_saved_usd > 0
            THEN h.last_day + CAST(ceil(-h.net_to_date_usd / (p.projected_monthly_saved_usd / 30)) AS INTEGER)
       END AS projected_break_even_day,
       p.projected_monthly_saved_usd,
       p.projected_monthly_saved_usd / 30 AS projected_daily_saved_usd,
       CASE WHEN p.served_workloads > 0 AND p.hypothetical_workloads > 0 THEN 'mixed'
            WHEN p.served_workloads > 0 THEN 'served'
            WHEN p.hypothetical_workloads > 0 THEN 'hypothetical' END AS projection_basis,
       p.served_list AS served_workloads, p.hypothetical_list AS hypothetical_workloads,
       p.unprojected_list AS unprojected_workloads, p.window_days, p.window_end
FROM history h, paid p2, projection p;

-- Serve health over [since, until], per workload and for all of them ('all workloads'): requests,
-- fallback rate, errors and latency of the calls `flywheel serve` answered (served_calls, synced from
-- the spool by `flywheel costs` / `stats` / the loop). A call to a workload without a champion goes
-- straight to the teacher (proxied): it is served traffic but not a fallback, so the fallback rate is
-- over the calls a student was asked to answer.
CREATE MACRO serve_health(since, until) AS TABLE
SELECT CASE WHEN grouping(workload_id) = 1 THEN 'all workloads' ELSE workload_id END AS workload_id,
       count(*) AS requests,
       count(*) FILTER (WHERE served_by = 'student') AS student_requests,
       count(*) FILTER (WHERE served_by = 'teacher' AND fallback_reason <> 'no_champion') AS fallback_requests,
       count(*) FILTER (WHERE fallback_reason = 'no_champion') AS proxied_requests,
       count(*) FILTER (WHERE served_by = 'teacher' AND fallback_reason <> 'no_champion')
           / nullif(count(*) FILTER (WHERE fallback_reason IS DISTINCT FROM 'no_champion'), 0) AS fallback_rate,
       count(*) FILTER (WHERE status <> 'ok') AS errors,
       quantile_cont(latency_ms, 0.5) AS p50_ms,
       quantile_cont(latency_ms, 0.95) AS p95_ms,
       quantile_cont(latency_ms, 0.95) FILTER (WHERE served_by = 'student') AS student_p95_ms,
       quantile_cont(latency_ms, 0.95) FILTER (WHERE served_by = 'teacher') AS teacher_p95_ms,
       min(day) AS first_day, max(day) AS last_day,
       (SELECT max(synced_at) FROM served_calls) AS synced_at
FROM v_request_costs
WHERE source = 'spool'
  AND day BETWEEN coalesce(since, DATE '0001-01-01') AND coalesce(until, DATE '9999-12-31')
GROUP BY GROUPING SETS ((workload_id), ())
ORDER BY grouping(workload_id), workload_id;

-- Savings per workload over [since, until] (the Overview's teacher-vs-actual chart).
CREATE MACRO savings_range(since, until) AS TABLE
SELECT workload_id, sum(requests) AS requests, sum(student_requests) AS student_requests,
       sum(fallback_requests) AS fallback_requests, sum(teacher_usd) AS teacher_usd,
       sum(serving_usd) AS serving_usd, sum(flywheel_usd) AS flywheel_usd, sum(actual_usd) AS actual_usd,
       sum(saved_usd) AS saved_usd, sum(saved_usd) / nullif(sum(teacher_usd), 0) AS saved_pct
FROM v_savings_daily
WHERE day BETWEEN coalesce(since, DATE '0001-01-01') AND coalesce(until, DATE '9999-12-31')
GROUP BY ALL;

-- Runs, readable: the decision and its reasons pulled out of each run's summary. A flywheel turn
-- records {"decision", "reasons"}; a retrain check {"trigger", "reasons"}; a failed or interrupted run
-- {"error"}; evaluation runs carry their gate decision.
CREATE OR REPLACE VIEW v_runs AS
WITH flows AS (
    SELECT *, CASE WHEN json_valid(summary) THEN CAST(summary AS JSON) END AS body
    FROM flywheel_runs
)
SELECT run_id, workload_id, flow, started_at, finished_at,
       date_diff('millisecond', started_at, finished_at) / 1000.0 AS duration_s,
       status, prefect_flow_run_id,
       coalesce(body->>'decision',
                CASE body->>'trigger' WHEN 'true' THEN 'retrain' WHEN 'false' THEN 'no retrain' END,
                CASE WHEN body->>'error' IS NOT NULL THEN 'error' END) AS decision,
       coalesce(nullif(CASE WHEN json_type(body->'reasons') = 'ARRAY'
                            THEN array_to_string(CAST(body->'reasons' AS VARCHAR[]), ', ')
                            ELSE body->>'reasons' END, ''),
                body->>'error') AS reasons,
       CAST(summary AS VARCHAR) AS summary, 'flywheel_runs' AS recorded_in
FROM flows
UNION ALL
SELECT run_id, workload_id, 'label', started_at, finished_at,
       date_diff('millisecond', started_at, finished_at) / 1000.0,
       coalesce(stopped_reason, CASE WHEN finished_at IS NULL THEN 'running' END),
       NULL, NULL, NULL,
       format('{} {}: {} labeled, {} cached, {} failed, ${:.4f}', mode, run_id[:8], labeled, cached, failed,
              cost_usd),
       'label_runs'
FROM label_runs
UNION ALL
SELECT run_id, workload_id, 'evaluate', started_at, finished_at,
       date_diff('millisecond', started_at, finished_at) / 1000.0,
       'completed', NULL,
       decision || coalesce(' ' || winner, ''),
       nullif(array_to_string(from_json(reasons, '["VARCHAR"]'), ', '), ''),
       NULL,
       'eval_runs'
FROM eval_runs;
