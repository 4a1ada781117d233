"""Domain metrics of the friends service (exposed on /metrics beside the request metrics)."""

from prometheus_client import Counter

INVITES = Counter("eindr_friends_invites_total", "Invites created", ["via"])  # user_id | contact_hash | code
FRIENDSHIPS = Counter("eindr_friends_friendships_total", "Friendships made (invite accepted or code redeemed)")
TIER_CHANGES = Counter("eindr_friends_tier_changes_total", "Permission tier changes", ["tier"])
MATCH_HASHES = Counter("eindr_friends_contact_match_hashes_total", "Contact hashes looked up")
MATCH_REFUSED = Counter("eindr_friends_contact_match_refused_total", "Contact match requests refused by the daily limit")
CACHE = Counter("eindr_friends_permission_cache_total", "Permission answers by cache outcome", ["result"])  # hit | miss | bypass
