"""Building the bundled sample corpus (data/sample) for `jobs/prepare_sample.py`: not library
code, nothing under `pipeline/` imports it."""
