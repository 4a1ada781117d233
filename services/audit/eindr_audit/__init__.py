"""The audit service: consumes audit events, chains and stores them, answers admins."""
