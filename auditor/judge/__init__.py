"""Decisions: policy, waivers, claims. The only place policy settings are read."""
