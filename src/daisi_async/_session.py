"""One Daisi on one server: the state that a Daisi's faces and its executions share.

A :class:`Session` holds the settings, the transport, the dialect the server speaks
and what the server said about the Daisi. ``AsyncDaisi`` owns one; executions use it
(never the face) to reach the dialect.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from anyio.abc import TaskGroup

from ._config import Settings
from ._dialects.base import DaisiInfo, Dialect
from ._dialects.negotiate import choose_dialect
from ._endpoints import Endpoints
from ._errors import DaisiError, DaisiNotConnectedError, DaisiNotFoundError, did_you_mean
from ._transport import Transport

__all__ = ["Session", "catalogue", "server"]


class Session:
    """The connection of one Daisi: transport, dialect, description.

    ``face`` names the object that owns it in messages (``"AsyncDaisi"``, ``"Daisi"``).
    """

    def __init__(
        self, query: str, settings: Settings, client: httpx.AsyncClient | None, face: str
    ) -> None:
        self.query = query
        self.settings = settings
        self.face = face
        self._client = client
        self._transport: Transport | None = None
        self._dialect: Dialect | None = None
        self._task_group: TaskGroup | None = None
        self.endpoints: Endpoints | None = None
        self.closed = False

    # -- connecting ----------------------------------------------------------------------
    async def open(self, task_group: TaskGroup | None = None) -> None:
        """Connect: pick the dialect, find the Daisi, check its endpoints.

        Any failure closes what was opened and raises; an unknown Daisi raises
        :class:`DaisiNotFoundError` naming the server and the near names it has.
        """
        if task_group is not None:
            self._task_group = task_group
        if self.endpoints is not None:
            return
        if self._transport is None:
            self._transport = Transport(self.settings, self._client)
        transport = self._transport
        try:
            if self._dialect is None:
                self._dialect = await choose_dialect(transport)
            self._dialect.attach(self._task_group)
            try:
                info = await self._dialect.connect(self.query)
            except DaisiNotFoundError:
                raise await self._not_found(self._dialect) from None
            self.endpoints = Endpoints(info, transport.base_url)
            self.closed = False
        except BaseException:
            await self.aclose()
            raise

    async def _not_found(self, dialect: Dialect) -> DaisiNotFoundError:
        names: list[str] = []
        with contextlib.suppress(DaisiError):  # a suggestion is a bonus, never an error
            owned = "/" in self.query  # "owner/name": suggest in that form
            for d in await dialect.catalogue():
                if not owned:
                    names.append(str(d["name"]))
                elif d.get("owner"):
                    names.append(f"{d['owner']}/{d['name']}")
        hint = did_you_mean(self.query, names)
        return DaisiNotFoundError(
            f"no Daisi named {self.query!r} at {self.settings.base_url}{hint}", status_code=404
        )

    async def ready(self) -> Dialect:
        """The dialect, connecting first if needed."""
        if self._dialect is None or self.endpoints is None:
            await self.open()
        assert self._dialect is not None
        return self._dialect

    async def aclose(self) -> None:
        """Stop background work and close the HTTP client (unless it was injected)."""
        dialect, self._dialect = self._dialect, None
        transport, self._transport = self._transport, None
        self.closed = self.closed or self.endpoints is not None  # was connected
        self.endpoints = None
        self._task_group = None
        try:
            if dialect is not None:
                await dialect.aclose()
        finally:
            if transport is not None:
                await transport.aclose()

    # -- what it knows -------------------------------------------------------------------
    def table(self, attribute: str) -> Endpoints:
        """The endpoints, or :class:`DaisiNotConnectedError` explaining how to connect."""
        if self.endpoints is not None:
            return self.endpoints
        state = "is closed" if self.closed else "is not connected yet"
        q = self.query
        if self.face == "Daisi":
            how = f"create a new `Daisi({q!r})`"
        else:
            how = (
                f"connect with `async with AsyncDaisi({q!r}) as d:` "
                f"or `d = await AsyncDaisi.connect({q!r})`"
            )
        raise DaisiNotConnectedError(
            f"{self.face}({q!r}) {state}, so it has no {attribute!r}: {how}"
        )

    @property
    def info(self) -> DaisiInfo:
        """What the server said about the Daisi."""
        return self.table("info").info

    @property
    def daisi_id(self) -> str:
        """The Daisi's id."""
        return self.info.id

    @property
    def name(self) -> str:
        """The Daisi's name (as asked for, before connecting)."""
        return self.endpoints.info.name if self.endpoints is not None else self.query

    @property
    def protocol(self) -> str:
        """``"v1"`` or ``"legacy"`` (``""`` before connecting)."""
        return self._dialect.name if self._dialect is not None else ""


async def catalogue(settings: Settings, client: httpx.AsyncClient | None) -> list[dict[str, Any]]:
    """Every Daisi the caller can see on the server of ``settings``, sorted by name."""
    async with server(settings, client) as dialect:
        return await dialect.catalogue()


@contextlib.asynccontextmanager
async def server(settings: Settings, client: httpx.AsyncClient | None) -> AsyncIterator[Dialect]:
    """The dialect of the server of ``settings``, for requests about no Daisi in
    particular (the catalogue, executions by id, the list of executions)."""
    transport = Transport(settings, client)
    try:
        yield await choose_dialect(transport)
    finally:
        await transport.aclose()
