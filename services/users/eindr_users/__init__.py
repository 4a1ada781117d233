"""Eindr users service: profile, preferences, plan, account deletion."""
