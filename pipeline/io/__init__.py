"""Input and output: readers, normalisation, quarantine sink, atomic writes, the sample corpus."""
