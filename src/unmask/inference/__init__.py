"""Loading saved models and scoring faces (`unmask detect`, `explain`, `index`, `similar`)."""
