"""Eindr ledger service: IOUs with exact per-contact totals."""
