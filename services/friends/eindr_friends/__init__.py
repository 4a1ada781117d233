"""Eindr friends service: invites, permissions, sharing, contact matching."""
