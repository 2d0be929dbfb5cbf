"""Compose stage: shot images + spoken lines → MP4 + SRT per chapter."""
