"""Eindr auth service: session set-up, devices, token revocation."""
