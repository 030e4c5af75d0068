"""Websockets that push `eval.updated` messages to the eval list and eval pages.

Clients never ask for data over the socket: a message says what changed (counts, status)
and the page fetches what it needs through the normal HTTP views.
"""

from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from evals.models import Eval
from evals.watcher import ensure_watcher, eval_group, eval_snapshot, list_group

# Application close codes (4000–4999): the page stops reconnecting on these.
CLOSE_UNAUTHENTICATED = 4401
CLOSE_NOT_FOUND = 4404


def can_view_eval(user, eval_id: str) -> bool:
    """Every logged-in user sees every eval, for now; the one place to narrow that."""
    return user.is_authenticated and Eval.objects.filter(pk=eval_id).exists()


class LiveConsumer(AsyncJsonWebsocketConsumer):
    """Joins `self.live_groups()` when allowed; relays `eval.updated` group messages."""

    joined: list[str]

    async def connect(self) -> None:
        self.joined = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Accept, then close with a code the page can tell apart from a dropped line.
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await self.allowed(user):
            await self.accept()
            await self.close(code=CLOSE_NOT_FOUND)
            return
        for group in self.live_groups():
            await self.channel_layer.group_add(group, self.channel_name)
            self.joined.append(group)
        await self.accept()
        ensure_watcher()
        await self.greet()

    async def disconnect(self, code: int) -> None:
        for group in self.joined:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs) -> None:
        """Clients have nothing to say; ignore whatever they send."""

    async def eval_updated(self, event: dict) -> None:
        await self.send_json(event)

    async def allowed(self, user) -> bool:
        return True

    def live_groups(self) -> list[str]:
        raise NotImplementedError

    async def greet(self) -> None:
        """Anything to send right after connecting (a reconnect may have missed updates)."""


class EvalListConsumer(LiveConsumer):
    """`ws/evals/`: every eval's updates, for the list and home pages."""

    def live_groups(self) -> list[str]:
        return [list_group()]


class EvalConsumer(LiveConsumer):
    """`ws/evals/<id>/`: one eval's updates, starting with its current state."""

    @property
    def eval_id(self) -> str:
        return self.scope["url_route"]["kwargs"]["eval_id"]

    async def allowed(self, user) -> bool:
        return await database_sync_to_async(can_view_eval)(user, self.eval_id)

    def live_groups(self) -> list[str]:
        return [eval_group(self.eval_id)]

    async def greet(self) -> None:
        snapshots = await database_sync_to_async(eval_snapshot)([self.eval_id])
        await self.send_json(snapshots[self.eval_id])
