"""The Slack stand-in's Socket Mode side: the app's websocket connections and their envelopes.

As Slack does, each envelope goes to ONE of the app's open connections, the next one in turn, and
its ack counts only on that connection. Each websocket URL that ``apps.connections.open`` hands
out carries a ticket naming the app-level token that asked for it, so every connection is known by
its token (``socket_tokens``) and an envelope can be addressed to one app process whichever
connection it holds after reconnecting. ``SlackStandIn`` mixes this in and calls
``_start_socket_mode`` from its constructor.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import uuid
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

__all__ = ["SocketModeStandIn"]


class SocketModeStandIn:
    """Socket Mode for ``SlackStandIn``, which provides the attributes declared here."""

    _changed: asyncio.Condition

    def slash_command_fields(self, text: str, *, channel_id: str, user_id: str) -> dict[str, Any]:
        raise NotImplementedError  # SlackStandIn's

    def _start_socket_mode(self) -> None:
        self._sockets: dict[int, WebSocket] = {}
        self._tickets: dict[str, str] = {}  # websocket URL ticket -> the app token it was issued to
        self.socket_tokens: dict[int, str] = {}
        """Connection number -> the app-level token that opened it (closed connections included)."""
        self._socket_numbers = itertools.count(1)
        self._next_socket = itertools.count()
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self.socket_acks: dict[str, int] = {}
        """Envelope id -> the number of the connection it was sent to and acknowledged on."""

    @property
    def socket_connections(self) -> int:
        return len(self._sockets)

    async def _socket_mode(self, websocket: WebSocket) -> None:
        # A ticket is not used up: slack_sdk retries a failed websocket open with the same URL.
        token = self._tickets.get(websocket.query_params.get("ticket", ""))
        if token is None:
            await websocket.close(code=1008)
            return
        await websocket.accept()
        number = next(self._socket_numbers)
        self.socket_tokens[number] = token
        await websocket.send_json(
            {
                "type": "hello",
                "num_connections": len(self._sockets) + 1,
                "connection_info": {"app_id": "A0TASKBOT1"},
            }
        )
        async with self._changed:
            self._sockets[number] = websocket
            self._changed.notify_all()
        try:
            while True:
                ack = json.loads(await websocket.receive_text())
                envelope_id = str(ack.get("envelope_id"))
                # An ack counts only on the connection the envelope was sent to, as with Slack.
                if self.socket_acks.get(envelope_id) != number:
                    continue
                waiter = self._acks.pop(envelope_id, None)
                if waiter is not None and not waiter.done():
                    waiter.set_result(ack)
        except WebSocketDisconnect:
            pass
        finally:
            async with self._changed:
                del self._sockets[number]
                self._changed.notify_all()

    def _open_sockets(self, app_token: str | None) -> list[int]:
        """The numbers of the open connections (those opened with ``app_token``, if given)."""
        return sorted(n for n in self._sockets if app_token is None or self.socket_tokens[n] == app_token)

    async def wait_for_sockets(
        self, count: int, timeout: float = 5.0, *, app_token: str | None = None
    ) -> None:
        """Wait until the app has ``count`` Socket Mode connections open (opened with ``app_token``, if given)."""
        async with self._changed:
            await asyncio.wait_for(
                self._changed.wait_for(lambda: len(self._open_sockets(app_token)) >= count), timeout
            )

    async def refresh_sockets(self, app_token: str, timeout: float = 5.0) -> None:
        """Ask ``app_token``'s connections to reconnect, as Slack does now and then; returns once
        all of them have closed and a new one is open."""
        old = self._open_sockets(app_token)
        for number in old:
            await self._sockets[number].send_json(
                {"type": "disconnect", "reason": "refresh_requested", "debug_info": {"host": "standin"}}
            )

        def refreshed() -> bool:
            now = self._open_sockets(app_token)
            return bool(now) and not set(now) & set(old)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(refreshed), timeout)

    async def socket_slash_command(
        self,
        text: str,
        *,
        channel_id: str = "C0DEMO0001",
        user_id: str = "U0DEMOUSER",
        team_id: str | None = None,
        app_token: str | None = None,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """Send ``/task <text>`` to one of the app's Socket Mode connections; returns its ack envelope.

        The connections take turns (round robin over those open now), so with several app
        processes connected each envelope reaches exactly one of them. With ``app_token`` only
        the connections opened with that token take part (waiting for one, as after a reconnect).
        """
        await self.wait_for_sockets(1, timeout, app_token=app_token)
        numbers = self._open_sockets(app_token)
        number = numbers[next(self._next_socket) % len(numbers)]
        envelope_id = uuid.uuid4().hex
        payload = self.slash_command_fields(text, channel_id=channel_id, user_id=user_id)
        if team_id is not None:
            payload["team_id"] = team_id
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope_id] = waiter
        self.socket_acks[envelope_id] = number
        try:
            await self._sockets[number].send_json(
                {
                    "envelope_id": envelope_id,
                    "type": "slash_commands",
                    "payload": payload,
                    "accepts_response_payload": True,
                }
            )
            return await asyncio.wait_for(waiter, timeout)
        finally:
            self._acks.pop(envelope_id, None)
