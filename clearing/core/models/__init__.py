"""pydantic models of every event, reference-data document and result of the spec."""
