"""Metrics (pure functions), reports, perturbations and cross-validation (`unmask eval`)."""
