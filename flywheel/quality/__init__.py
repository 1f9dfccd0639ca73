"""Curation checks: row checks, the Great Expectations suite, PII scrubbing, dedup, de-bias, pruning.

One concern per module. This package is imported by flywheel.config (for `CurationConfig`), so this
file stays empty of imports: heavy libraries load only inside the functions that need them.
"""
