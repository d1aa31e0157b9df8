"""Synthesised training fakes from real faces (`unmask synth`)."""
