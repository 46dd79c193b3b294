"""Real-cluster end-to-end tests (opt-in; see docs/e2e.md)."""
