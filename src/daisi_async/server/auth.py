"""Tokens, users and who may see what.

A tokens file maps tokens to users, either as JSON (``{"TOKEN": "alice"}``) or as text
lines ``TOKEN USER`` (``#`` starts a comment). Requests carry
``Authorization: token TOKEN`` (``Bearer TOKEN`` works too).

Rules: public Daisies are callable by anyone; a private Daisi is visible only to its
owner (everyone else gets 404, as if it did not exist); an execution is visible to the
user who made it, and anonymous executions to anyone who knows their id. Changing a
Daisi (its number of workers) takes its owner's token; a server without tokens has a
single anonymous user, who owns everything.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path


class AuthError(Exception):
    """The request carried a token that maps to no user."""


def load_tokens(path: Path) -> dict[str, str]:
    """Read a tokens file (JSON object or ``TOKEN USER`` lines)."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("{"):
        data = json.loads(text)
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise ValueError(f"{path}: expected a JSON object of token -> user")
        return dict(data)
    tokens: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}:{n}: expected 'TOKEN USER'")
        tokens[parts[0]] = parts[1]
    return tokens


class Auth:
    """Maps the ``Authorization`` header of a request to a user (or None: anonymous).

    Example:
        >>> Auth({"s3cret": "alice"}).user("token s3cret")
        'alice'
    """

    def __init__(self, tokens: Mapping[str, str] | None = None) -> None:
        self._tokens = dict(tokens or {})

    def user(self, header: str | None) -> str | None:
        """The user of an ``Authorization`` header value; raises :class:`AuthError`."""
        if not header:
            return None
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() not in ("token", "bearer") or not token:
            raise AuthError("malformed Authorization header: use 'token <TOKEN>'")
        try:
            return self._tokens[token]
        except KeyError:
            raise AuthError("invalid access token") from None

    @staticmethod
    def can_see_daisi(user: str | None, *, owner: str, public: bool) -> bool:
        """Whether ``user`` may see and call a Daisi."""
        return public or (user is not None and user.lower() == owner.lower())

    @property
    def enabled(self) -> bool:
        """Whether the server has tokens (else every caller is the one anonymous user)."""
        return bool(self._tokens)

    def can_manage_daisi(self, user: str | None, *, owner: str) -> bool:
        """Whether ``user`` may change a Daisi's settings, such as its number of workers."""
        if not self.enabled:
            return True
        return user is not None and user.lower() == owner.lower()

    @staticmethod
    def can_see_execution(user: str | None, creator: str | None) -> bool:
        """Whether ``user`` may read an execution made by ``creator``."""
        return creator is None or creator == user
