"""Detectors behind one registry: `create_detector(name, **kw)`, `list_detectors()`."""

from unmask.detectors.registry import create_detector, detector_info, list_detectors

__all__ = ["create_detector", "detector_info", "list_detectors"]
