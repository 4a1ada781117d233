"""The public contract of the friends service: request and response bodies."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)

from . import domain


def _clean(value: str) -> str:
    problem = domain.text_problem(value)
    if problem:
        raise ValueError(problem)
    if not value.strip():
        raise ValueError("must not be blank")
    return value


UserId = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_clean)]
ItemId = Annotated[str, StringConstraints(min_length=1, max_length=128), AfterValidator(_clean)]
ContactHash = Annotated[str, StringConstraints(min_length=64, max_length=64, pattern=r"^[0-9a-f]{64}$")]
Tier = Literal["basic", "trusted"]
ItemType = Literal["reminder", "note"]
Access = Literal["view", "edit"]


class InviteCreate(BaseModel):
    """Exactly one of: ``user_id`` (someone on Eindr), ``contact_hash`` (hex SHA-256 of
    their E.164 phone or lower-cased email; they must be discoverable), or
    ``shareable: true`` (a single-use code/link anyone may redeem before it expires)."""

    model_config = ConfigDict(extra="forbid")

    user_id: UserId | None = None
    contact_hash: ContactHash | None = None
    shareable: bool = False
    expires_in_s: Annotated[int, Field(ge=60, le=30 * 24 * 3600)] | None = None

    @model_validator(mode="after")
    def _one_target(self) -> InviteCreate:
        given = sum([self.user_id is not None, self.contact_hash is not None, self.shareable])
        if given != 1:
            raise ValueError("give exactly one of user_id, contact_hash or shareable: true")
        return self


class InviteRedeem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: Annotated[str, StringConstraints(min_length=1, max_length=32), AfterValidator(_clean)]


class Invite(BaseModel):
    id: str
    inviter_id: str
    invitee_id: str | None
    via: Literal["user_id", "contact_hash", "code"]
    status: Literal["pending", "accepted", "declined", "cancelled", "expired"]
    created_at: datetime
    expires_at: datetime
    responded_at: datetime | None
    # Only in the response that creates a shareable invite (stored hashed, never again).
    code: str | None = None
    link: str | None = None


class Friend(BaseModel):
    user_id: str
    my_tier: Tier = Field(description="What I allow this friend")
    their_tier: Tier = Field(description="What this friend allows me")
    shares_ledger: bool = Field(description="Both trusted: each one's entries about the other show in both ledgers")
    display_name: str | None = None
    since: datetime


class PermissionChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    tier: Tier


class BlockCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UserId


class Block(BaseModel):
    user_id: str
    created_at: datetime


class ShareCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    friend_id: UserId
    item_type: ItemType
    item_id: ItemId
    access: Access = "view"


class SharePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    access: Access


class Share(BaseModel):
    id: str
    owner_id: str
    friend_id: str
    item_type: ItemType
    item_id: str
    access: Access
    created_at: datetime
    updated_at: datetime


class DiscoveryUpdate(BaseModel):
    """Registers the verified phone/email of the caller's sign-in (from the token, never
    from the body) for contact matching, and whether they may be found at all."""

    model_config = ConfigDict(extra="forbid")

    discoverable: bool
    display_name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), AfterValidator(_clean)] | None = None


class Discovery(BaseModel):
    discoverable: bool
    display_name: str | None
    identifiers: list[Literal["phone", "email"]]


class ContactMatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # The count limit is checked in the service (configurable, 400 with the limit named);
    # the hard cap here keeps a runaway body from being parsed into a giant list.
    hashes: Annotated[list[ContactHash], Field(min_length=1, max_length=50_000)]


class ContactMatch(BaseModel):
    hash: str
    user_id: str
    display_name: str | None
    avatar_url: str | None
    is_friend: bool


class ContactMatchResult(BaseModel):
    matches: list[ContactMatch]
    remaining_today: int


# --- internal (other services) ------------------------------------------------------------


class Permission(BaseModel):
    owner_id: str
    viewer_id: str
    friends: bool
    blocked: bool
    tier: Tier | None = Field(description="What the owner allows the viewer")
    reverse_tier: Tier | None = Field(description="What the viewer allows the owner")
    can_create_reminders: bool
    shares_ledger: bool
    item_access: Access | None = Field(default=None, description="With ?item_type=&item_id=: the viewer's access to that item")


class LedgerPeers(BaseModel):
    user_id: str
    peers: list[str]


class SharedItem(BaseModel):
    owner_id: str
    item_type: ItemType
    item_id: str
    access: Access
    shared_at: datetime
