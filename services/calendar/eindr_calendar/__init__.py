"""Eindr calendar sync service."""
