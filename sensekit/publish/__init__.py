"""Publishing aggregates. Publishers accept ZoneWindow and health values only, never frames."""
