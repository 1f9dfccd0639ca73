"""`flywheel serve`: an OpenAI-compatible endpoint that answers with the promoted student, falls back
to the teacher when the student is unsure or wrong in format, and captures every call to a spool.

Kept import-light on purpose: flywheel.config imports `flywheel.serve.settings`, so nothing here may
pull in FastAPI, openai or torch. Import the submodules you need.
"""
