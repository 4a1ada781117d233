"""The gateway: the only component the mobile and web clients talk to."""
