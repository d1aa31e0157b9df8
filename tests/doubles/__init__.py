"""Test doubles: stand-in predictors, a live server, tiny saved models and throwaway
Content Credentials. They live under tests/ so the wheel ships none of them; tests import
them as `doubles.*` (pytest puts tests/ on sys.path), benchmarks after adding tests/ to it.

    doubles.serving     BrightnessPredictor, TinyCamPredictor, free_port, live_server
    doubles.models      tiny_torch_model, TINY_SPEC
    doubles.provenance  throwaway_chain, sign_image
"""
