"""Eindr history service."""
