"""HTTP API and web page (`unmask serve`)."""
