"""Reports from the result store: leaderboards, curves, regression checks. Never runs attacks, never imports torch."""
