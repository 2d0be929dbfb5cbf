"""Ingest stage: decode, clean and split a novel into chapters; create projects."""
