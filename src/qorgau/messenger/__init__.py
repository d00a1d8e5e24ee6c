"""The officials' messenger: Matrix-compatible rooms, live delivery, media (later: web UI, letters, notices)."""
