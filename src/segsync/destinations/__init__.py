"""Destinations: the plug-in seam (base.py), the registry, and one package per platform."""
