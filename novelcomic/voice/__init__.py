"""Voice stage: one audio file per spoken line."""
