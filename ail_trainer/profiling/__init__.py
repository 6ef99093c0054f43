"""Profiling: what a model inherits (textual profile, toxicity, calibration, BBQ bias), compared before/after."""

from .callback import ProfilingCallback
from .profile import ProfileOptions, profile_loaded, profile_model, profile_texts

__all__ = ["ProfileOptions", "ProfilingCallback", "profile_loaded", "profile_model", "profile_texts"]
