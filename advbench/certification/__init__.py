"""Certification of randomized smoothing (Cohen et al. 2019)."""
