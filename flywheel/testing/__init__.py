"""Test and demo helpers shared across stages: a local OpenAI-compatible server (fake_openai) and oracles.

Nothing here is imported by the library at run time; import the submodules you need.
"""
