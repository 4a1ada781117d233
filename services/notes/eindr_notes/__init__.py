"""Eindr notes service."""
