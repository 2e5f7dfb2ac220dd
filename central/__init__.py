"""The central service: storage, ingest, deadlines, exceptions."""
