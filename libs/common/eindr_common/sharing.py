"""Access to an item its owner shared with a friend (the friends service keeps the shares).

A caller's access to an item is ``owner`` (theirs) or the access of a friend's share of it:
``view`` grants reading, ``edit`` adds changing it; everything else a kind of item allows
(deleting, sharing further, ...) stays the owner's. Each owning service lists its actions.
"""

from __future__ import annotations

from dataclasses import dataclass

ACCESS_LEVELS = ("owner", "edit", "view")
_SHARE_GRANTS = {"edit": frozenset({"read", "edit"}), "view": frozenset({"read"})}


@dataclass(frozen=True)
class SharedAccess:
    """What each access level may do with one kind of item; ``actions`` is everything its
    owner may do (``read`` and ``edit`` among them)."""

    actions: tuple[str, ...]

    def permits(self, access: str, action: str) -> bool:
        """Whether ``access`` allows ``action`` (unknown access or action: no)."""
        if action not in self.actions:
            return False
        return access == "owner" or action in _SHARE_GRANTS.get(access, ())
