"""SupportLens: one screen for a support agent."""
