"""Frequency features: DCT and azimuthal power spectra (pure NumPy/SciPy)."""
