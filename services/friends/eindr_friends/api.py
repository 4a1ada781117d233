"""HTTP routes of the friends service: parse, call a use case, respond."""

from __future__ import annotations

from typing import Annotated, Literal

from eindr_common.idempotency import IdempotencyKey
from eindr_common.identity import CurrentUser
from eindr_common.pagination import Page, Pagination
from fastapi import APIRouter, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse

from . import service
from .schemas import (
    Block,
    BlockCreate,
    ContactMatchRequest,
    ContactMatchResult,
    Discovery,
    DiscoveryUpdate,
    Friend,
    Invite,
    InviteCreate,
    InviteRedeem,
    LedgerPeers,
    Permission,
    PermissionChange,
    Share,
    ShareCreate,
    SharedItem,
    SharePatch,
)

_PROBLEM = {"description": "Problem details (RFC 9457)", "content": {"application/problem+json": {}}}
_ERRORS = {400: _PROBLEM, 401: _PROBLEM, 403: _PROBLEM, 404: _PROBLEM, 409: _PROBLEM, 503: _PROBLEM}

router = APIRouter(prefix="/v1/friends", tags=["friends"], responses=_ERRORS)

IdPath = Annotated[str, Path(min_length=1, max_length=64)]
UserPath = Annotated[str, Path(min_length=1, max_length=128)]


def deps(request: Request) -> service.Deps:
    return request.app.state.friends_deps


# --- invites ----------------------------------------------------------------------------


@router.post("/invites", response_model=Invite, status_code=status.HTTP_201_CREATED, summary="Invite by user id, contact hash, or make a shareable code")
async def create_invite(body: InviteCreate, user: CurrentUser, idem: IdempotencyKey, request: Request) -> JSONResponse:
    return await idem.run(body, lambda: service.create_invite(deps(request), user, body), status_code=201)


@router.get("/invites", response_model=Page[Invite], summary="Invites received (incoming) or sent (outgoing)")
async def list_invites(
    user: CurrentUser, page: Pagination, request: Request,
    direction: Literal["incoming", "outgoing"] = "incoming",
    status_: Annotated[Literal["pending", "accepted", "declined", "cancelled"] | None, Query(alias="status")] = None,
) -> dict:
    return await service.list_invites(deps(request), user, direction, status_, page)


@router.post("/invites/redeem", response_model=Invite, summary="Redeem a shareable invite code (single use)")
async def redeem(body: InviteRedeem, user: CurrentUser, request: Request) -> dict:
    return await service.redeem_code(deps(request), user, body.code)


@router.post("/invites/{invite_id}/accept", response_model=Invite, summary="Accept an invite sent to you")
async def accept(invite_id: IdPath, user: CurrentUser, request: Request) -> dict:
    return await service.answer_invite(deps(request), user, invite_id, "accept")


@router.post("/invites/{invite_id}/decline", response_model=Invite, summary="Decline an invite sent to you")
async def decline(invite_id: IdPath, user: CurrentUser, request: Request) -> dict:
    return await service.answer_invite(deps(request), user, invite_id, "decline")


@router.post("/invites/{invite_id}/cancel", response_model=Invite, summary="Cancel an invite you sent")
async def cancel(invite_id: IdPath, user: CurrentUser, request: Request) -> dict:
    return await service.answer_invite(deps(request), user, invite_id, "cancel")


# --- blocks -----------------------------------------------------------------------------


@router.post("/blocks", response_model=Block, status_code=status.HTTP_201_CREATED, summary="Block a user (ends friendship, invites, shares)")
async def block(body: BlockCreate, user: CurrentUser, request: Request) -> dict:
    return await service.block(deps(request), user, body)


@router.get("/blocks", response_model=list[Block], summary="Users you blocked")
async def list_blocks(user: CurrentUser, request: Request) -> list:
    return await service.list_blocks(deps(request), user)


@router.delete("/blocks/{user_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Unblock (does not restore the friendship)")
async def unblock(user_id: UserPath, user: CurrentUser, request: Request) -> Response:
    await service.unblock(deps(request), user, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- shares -----------------------------------------------------------------------------


@router.post("/shares", response_model=Share, status_code=status.HTTP_201_CREATED, summary="Share a reminder or note with a friend")
async def share(body: ShareCreate, user: CurrentUser, request: Request) -> JSONResponse:
    from fastapi.encoders import jsonable_encoder

    result, created = await service.share(deps(request), user, body)
    return JSONResponse(jsonable_encoder(result), status_code=201 if created else 200)


@router.get("/shares", response_model=Page[Share], summary="What you share (outgoing) or friends share with you (incoming)")
async def list_shares(
    user: CurrentUser, page: Pagination, request: Request,
    direction: Literal["incoming", "outgoing"] = "outgoing",
    item_type: Literal["reminder", "note"] | None = None,
) -> dict:
    return await service.list_shares(deps(request), user, direction, item_type, page)


@router.get("/shares/{share_id}", response_model=Share, summary="One share (its owner or its friend)")
async def get_share(share_id: IdPath, user: CurrentUser, request: Request) -> dict:
    return await service.get_share(deps(request), user, share_id)


@router.patch("/shares/{share_id}", response_model=Share, summary="Change view/edit access")
async def patch_share(share_id: IdPath, body: SharePatch, user: CurrentUser, request: Request) -> dict:
    return await service.change_share(deps(request), user, share_id, body.access)


@router.delete("/shares/{share_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Revoke a share")
async def revoke_share(share_id: IdPath, user: CurrentUser, request: Request) -> Response:
    await service.revoke_share(deps(request), user, share_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- discovery, contacts ----------------------------------------------------------------


@router.get("/me/discovery", response_model=Discovery, summary="Whether you can be found by contact matching")
async def get_discovery(user: CurrentUser, request: Request) -> dict:
    return await service.get_discovery(deps(request), user)


@router.put("/me/discovery", response_model=Discovery, summary="Allow or refuse being found; registers your verified phone/email (hashed)")
async def put_discovery(body: DiscoveryUpdate, user: CurrentUser, request: Request) -> dict:
    return await service.update_discovery(deps(request), user, body)


@router.post("/contacts:match", response_model=ContactMatchResult, summary="Which contact hashes belong to findable users")
async def match(body: ContactMatchRequest, user: CurrentUser, request: Request) -> dict:
    return await service.match_contacts(deps(request), user, body)


# --- friends (parameterised routes last) ------------------------------------------------


@router.get("", response_model=Page[Friend], summary="Your friends, with the tier each way")
async def list_friends(user: CurrentUser, page: Pagination, request: Request) -> dict:
    return await service.list_friends(deps(request), user, page)


@router.get("/{friend_id}", response_model=Friend, summary="One friend")
async def get_friend(friend_id: UserPath, user: CurrentUser, request: Request) -> dict:
    return await service.get_friend(deps(request), user, friend_id)


@router.put("/{friend_id}/permissions", response_model=Friend, summary="Set what you allow this friend (basic/trusted); at once everywhere")
async def set_permissions(friend_id: UserPath, body: PermissionChange, user: CurrentUser, request: Request) -> dict:
    return await service.set_tier(deps(request), user, friend_id, body.tier)


@router.delete("/{friend_id}", status_code=status.HTTP_204_NO_CONTENT, summary="Remove a friend (and every share between you)")
async def remove_friend(friend_id: UserPath, user: CurrentUser, request: Request) -> Response:
    await service.remove_friend(deps(request), user, friend_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- internal: asked by reminders, notes, ledger with the end user's internal token ----

internal = APIRouter(prefix="/internal/friends", tags=["internal"], include_in_schema=False)


@internal.get("/{owner_id}/permissions/{viewer_id}", response_model=Permission)
async def permission(
    owner_id: UserPath, viewer_id: UserPath, user: CurrentUser, request: Request,
    item_type: Literal["reminder", "note"] | None = None,
    item_id: Annotated[str | None, Query(min_length=1, max_length=128)] = None,
) -> dict:
    return await service.permission(deps(request), user, owner_id, viewer_id, item_type, item_id)


@internal.get("/{user_id}/ledger-peers", response_model=LedgerPeers)
async def ledger_peers(user_id: UserPath, user: CurrentUser, request: Request) -> dict:
    return await service.ledger_peers(deps(request), user, user_id)


@internal.get("/{user_id}/shared-with-me", response_model=Page[SharedItem])
async def shared_with_me(
    user_id: UserPath, user: CurrentUser, page: Pagination, request: Request,
    item_type: Literal["reminder", "note"] | None = None,
) -> dict:
    return await service.shared_with(deps(request), user, user_id, item_type, page)
