"""Domain metrics of the ledger (exposed on /metrics beside the request metrics)."""

from prometheus_client import Counter

ENTRIES = Counter("eindr_ledger_entries_created_total", "Ledger entries recorded", ["currency"])
SETTLEMENTS = Counter("eindr_ledger_settlements_total", "Settlements recorded", ["kind"])  # partial | full
UNDONE = Counter("eindr_ledger_settlements_undone_total", "Settlements undone")
DISPUTES = Counter("eindr_ledger_disputes_total", "Entries disputed by the other side")
FRIENDS_UNAVAILABLE = Counter("eindr_ledger_friends_unavailable_total", "Requests answered without friends' shared entries (friends down)")
REMINDER_FAILURES = Counter("eindr_ledger_reminder_failures_total", "Due dates saved without a reminder (reminders down or refusing)")
