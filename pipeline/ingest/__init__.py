"""The ingest stage: sources into documents (readers, decompression, normalisation, one id per
document); what it writes goes through `pipeline.plumbing`."""
