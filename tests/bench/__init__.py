"""`make bench`: Alchemy's figures measured against this machine's own limits.

Run `python -m tests.bench --scale small|full`. Data is built only through the real write
path (evals.services, prompts.services); every ratio is taken against a bare baseline
measured in the same run, so the figures hold on a noisy machine. Not collected by
pytest (no `test_` modules): speed claims live here, never in timed tests.
"""
