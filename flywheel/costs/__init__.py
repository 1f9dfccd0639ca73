"""Cost accounting: what the traffic would have cost on the teacher, what it did cost, and the savings.

The arithmetic lives in SQL views (flywheel/store/migrations/0007_costs.sql, 0010_teacher_cost.sql) so
that `flywheel costs`, `flywheel stats`, `flywheel evaluate`, the dashboard and an analyst's own query read
the same numbers. This package only prices what SQL cannot know (token counts of calls that logged no
usage, catalog prices, hardware rates, a candidate's estimated serving cost), stores those in
`token_counts`, `model_prices` and `cost_assumptions`, and reads the views.

Definitions (per workload and UTC day; totals are sums over days):
- tokens of a request: its logged usage, else its full logged request (all messages, tool schemas,
  response_format) and answer counted with its model family's tokenizer; the method is recorded per
  request (flywheel/costs/teacher_cost.py, flywheel/costs/tokens.py). Failed calls: 0 (not billed).
- teacher_usd: what the teacher charged, or would have, for every request, priced when read (a price
  added to the catalog or flywheel.yaml later re-prices history). Teacher-answered and ingested
  traffic: its own model's catalog price x its tokens, else its logged cost_usd. Student-served traffic
  (`flywheel serve`, served_by=student): the teacher's catalog price x the request's tokens. The
  teacher is the model that answered the workload's production traffic (the most common priced
  model), else the config teacher; without a catalog price, the workload's own logged USD per token.
- serving_usd: what answering the traffic really cost: teacher-answered calls (their teacher_usd) + the
  student serving cost of student-served calls (their logged cost_usd, else the candidate's
  estimated cost per request) + the background teacher calls of shadowed requests
  (metadata.shadow_cost_usd) + ledger rows of kind student_serving (serving billed outside requests).
- flywheel_usd: the flywheel's own spend (the investment): every other cost_ledger row (labeling,
  teacher_inference, training, evaluation), plus training priced as models.train_seconds x the
  training hardware rate for models whose training left no ledger row.
- actual_usd = serving_usd + flywheel_usd; saved_usd = teacher_usd - actual_usd;
  saved_pct = saved_usd / teacher_usd.
- break_even_day: the first day on which cumulative serving savings (teacher_usd - serving_usd) are
  positive and at least the cumulative flywheel investment.
- projected_monthly_saved_usd = saved_per_request x monthly_requests, where monthly_requests is the
  request count of the 7 days ending on the workload's last day with traffic (fewer days when the
  workload is younger), scaled to 30 days. saved_per_request: for served workloads, (teacher_usd -
  serving_usd) per request served by `flywheel serve` in that window (the current student share and
  fallback rate); for workloads not yet served, the ingested traffic's teacher cost per request times
  the candidate's coverage (the share it answers: a partial promotion's calibrated coverage, else 1,
  an upper bound that assumes no fallbacks) minus the candidate's estimated serving cost per request
  (it runs on every request). One-off investment is not projected (0013_cascade_tools.sql).
- A candidate's estimated cost per 1k requests: its evaluation's measured cost_per_1k when recorded,
  else the serving hardware's USD/hour / (models.tokens_per_second / the workload's mean completion
  tokens per request) x 1000.
- student_share: student-served requests / all requests to date; fallback_rate: teacher fallbacks /
  requests answered by `flywheel serve`.
- quality_held: the champion's latest production (shadow) score, else its gate score (a partial
  promotion's: the mix it serves), reaches the lower bound of the teacher's confidence interval on the
  evaluation that promoted it.
- unpriced: requests with no price at all (a model neither the catalog nor flywheel.yaml prices, and no
  logged cost); they add nothing to any sum (unknown is neither free nor costly) and are counted so
  that a gap is visible; `flywheel stats/costs/evaluate` name each such model with the config line
  that prices it.
"""

from flywheel.costs.assumptions import CostAssumptions, estimate_assumptions, record_assumptions
from flywheel.costs.hardware import serving_cost_per_1k, training_cost_usd, training_ledger_row
from flywheel.costs.ledger import SUMMARY_KEYS, savings_daily, savings_report
from flywheel.hardware_profiles import HardwareProfile, hardware_profile, load_hardware_profiles

__all__ = [
    "SUMMARY_KEYS",
    "CostAssumptions",
    "HardwareProfile",
    "estimate_assumptions",
    "hardware_profile",
    "load_hardware_profiles",
    "record_assumptions",
    "savings_daily",
    "savings_report",
    "serving_cost_per_1k",
    "training_cost_usd",
    "training_ledger_row",
]
