"""Training: classical pipelines and one Lightning engine for every CNN (`unmask train`)."""
