"""The profile stage: golden records with provenance, chosen by survivorship rules."""

from crm_hub.profile.golden import ProfileResult, build_profiles, survivorship_for
from crm_hub.profile.survivorship import load_survivorship

__all__ = ["ProfileResult", "build_profiles", "load_survivorship", "survivorship_for"]
