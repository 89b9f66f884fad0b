"""Operator sign-in for the console: admin token or an operator account, signed session cookie, CSRF."""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.responses import RedirectResponse, Response

from topup.bootstrap import Container
from topup.domain.errors import TopupError
from topup.domain.roles import Actor, Role, Via
from topup.entrypoints.site import site_of
from topup.entrypoints.websession import Session, SiteAuth, csrf_ok
from topup.services import merchants, operators

COOKIE = "topup_console"
LOGIN_COOKIE = "topup_console_login"
ADMIN_SUBJECT = "admin"
OPERATOR_PREFIX = "op:"


class LoginRequired(Exception):
    """No (valid) operator session: the page redirects to the login form."""


class CsrfFailed(Exception):
    """A POST without the session's CSRF token, or from another origin."""


@dataclass
class ConsoleAuth(SiteAuth):
    @classmethod
    def for_container(cls, c: Container) -> ConsoleAuth:
        return cls.from_settings(c.settings, COOKIE, "operator")


def console_auth(request: Request) -> ConsoleAuth:
    return site_of(request).console_auth


def display_name(session: Session) -> str:
    if session.subject == ADMIN_SUBJECT:
        return "admin (token)"
    return session.subject.removeprefix(OPERATOR_PREFIX)


async def check_credentials(c: Container, username: str, password: str) -> str | None:
    """The session subject for good credentials, else None. An empty username means the admin token."""
    if not username:
        ok = hmac.compare_digest(password.encode(), c.settings.admin_token.encode())
        return ADMIN_SUBJECT if ok else None
    async with c.db.transaction() as tx:
        row = await tx.operators.get(username)
    hashed = row.password_hash if row is not None else None
    # argon2 costs tens of milliseconds of CPU: keep the event loop free.
    ok = await asyncio.to_thread(merchants.verify_password, hashed, password)
    return OPERATOR_PREFIX + username if ok else None


async def _operator_role(c: Container, subject: str) -> Role | None:
    """The account's current role (the admin token: admin); None when the account is gone."""
    if subject == ADMIN_SUBJECT:
        return Role.ADMIN
    name = subject.removeprefix(OPERATOR_PREFIX)
    async with c.db.transaction() as tx:
        return await operators.role_of(tx, name)  # an unknown stored role grants the least


async def operator(request: Request) -> Session:
    """Dependency for every console page: a signed-in operator (an operator removed since is signed out),
    whose current role is kept on the request as its `Actor` (console/roles.py)."""
    session = console_auth(request).sessions.read(request)
    role = None if session is None else await _operator_role(request.app.state.container, session.subject)
    if session is None or role is None:
        raise LoginRequired()
    credential = "admin-token" if session.subject == ADMIN_SUBJECT else "session"
    name = session.subject.removeprefix(OPERATOR_PREFIX)
    host = request.client.host if request.client is not None else None
    request.state.topup_actor = Actor(name, role, Via.CONSOLE, host, credential)
    return session


def same_origin(request: Request) -> bool:
    """Browsers send Origin on POST; when they do, it must be this site (as addressed or as published)."""
    origin = request.headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    public = request.app.state.container.settings.public_url or ""
    allowed = {request.headers.get("host", ""), urlsplit(public).netloc} - {""}
    return urlsplit(origin).netloc in allowed


async def operator_post(request: Request) -> Session:
    """Dependency for every console POST: signed in, same origin, and the form echoes the CSRF token."""
    session = await operator(request)
    form = await request.form()
    submitted = form.get("csrf") or request.headers.get("x-csrf-token")
    if not same_origin(request) or not csrf_ok(session, str(submitted) if submitted else None):
        raise CsrfFailed()
    return session


def login_token(request: Request) -> str:
    """Double-submit token for the login form itself (there is no session yet)."""
    return request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)


def set_login_cookie(response: Response, token: str) -> None:
    response.set_cookie(LOGIN_COOKIE, token, max_age=3600, httponly=True, samesite="strict", path="/console")


def safe_next(target: str | None) -> str:
    """Only ever redirect back into the console (no open redirects)."""
    if target and target.startswith("/console") and not target.startswith("//") and "\\" not in target:
        return target
    return "/console"


def login_redirect(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if request.method != "GET":
        target = "/console"
    return RedirectResponse(f"/console/login?next={quote(target, safe='')}", status_code=303)


Renderer = Callable[[Request, str, int, str], Response]


class ConsoleRoute(APIRoute):
    """Turns the console's exceptions into pages: login redirect, 403, error page with the message."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            from topup.entrypoints.console.pages import error_page

            try:
                return await original(request)
            except LoginRequired:
                return login_redirect(request)
            except CsrfFailed:
                return error_page(
                    request, 403, "Forbidden", "The form was stale or came from elsewhere. Reload and retry."
                )
            except TopupError as e:
                return error_page(request, e.status, e.code.replace("_", " ").capitalize(), e.message)
            except RequestValidationError:
                return error_page(request, 400, "Bad request", "The address has an invalid parameter.")

        return handler
