"""Eindr reminders service: API, scheduler worker and notification delivery."""
