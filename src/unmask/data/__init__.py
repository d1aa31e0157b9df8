"""Inputs -> frames -> face crops -> manifest (`unmask prepare`)."""
