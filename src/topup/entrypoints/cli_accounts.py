"""`topup operator ...` (accounts, roles, API tokens) and `topup keys ...` (fresh secrets, key rotation).

These work on the database directly (`TOPUP_DATABASE_URL`): whoever can run them holds the database
credentials, so they act with full rights. Every change is written to the audit log as made through
the CLI by the OS user on this host.
"""

from __future__ import annotations

import asyncio
import getpass
import secrets
import socket
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, NoReturn, TypeVar

import typer

from topup.adapters.db.engine import Tx
from topup.config import Settings
from topup.domain.errors import TopupError
from topup.domain.roles import Actor, Role, Via

operator_app = typer.Typer(
    help="Operator accounts (console sign-in), their roles and API tokens.", no_args_is_help=True
)
keys_app = typer.Typer(
    help="Secrets: fresh values, and key rotation for supplier credentials.", no_args_is_help=True
)

T = TypeVar("T")
RoleOpt = Annotated[
    Role | None, typer.Option("--role", help="viewer | operator | admin", case_sensitive=False)
]


def register(app: typer.Typer) -> None:
    app.add_typer(operator_app, name="operator")
    app.add_typer(keys_app, name="keys")


def _die(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(1)


def settings() -> Settings:
    """The environment's settings; a bad one (an unreadable key file) is one line, not a traceback."""
    from pydantic import ValidationError

    try:
        return Settings()
    except ValidationError as e:
        _die("; ".join(str(err.get("msg", err)).removeprefix("Value error, ") for err in e.errors()))


def cli_actor() -> Actor:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor(user, Role.ADMIN, Via.CLI, socket.gethostname(), "local")


def in_transaction(fn: Callable[[Tx, Any], Awaitable[T]]) -> T:
    """Run `fn(tx, container)` in one transaction on the configured database (migrated first)."""
    from topup import bootstrap

    async def main() -> T:
        c = bootstrap.build(settings())
        try:
            await c.start()
            async with c.db.transaction() as tx:
                return await fn(tx, c)
        finally:
            await c.close()

    try:
        return asyncio.run(main())
    except TopupError as e:
        _die(e.message)


# ---- operator accounts ---------------------------------------------------------------------------


@operator_app.command("add")
def operator_add(
    name: str,
    role: RoleOpt = None,
    reset: Annotated[
        bool, typer.Option("--reset", help="Change the password of an existing operator")
    ] = False,
) -> None:
    """Create a console account NAME (role: viewer unless --role); prompts for its password."""
    from topup.services import operators

    try:
        operators.check_name(name)
    except TopupError as e:
        _die(e.message)
    password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if len(password) < operators.MIN_PASSWORD:
        _die(f"use at least {operators.MIN_PASSWORD} characters")

    async def run(tx: Tx, _c: Any) -> str:
        if await operators.get(tx, name) is not None and not reset:
            return "exists"
        out, created = await operators.put(tx, cli_actor(), name, password=password, role=role)
        return f"{'created' if created else 'updated'} ({out['role']})"

    outcome = in_transaction(run)
    if outcome == "exists":
        _die(f"operator {name} exists; use --reset to change the password")
    typer.echo(f"operator {name} {outcome}; sign in at /console with this name and password")


@operator_app.command("role")
def operator_role(name: str, role: Annotated[Role, typer.Argument(case_sensitive=False)]) -> None:
    """Give operator NAME the role ROLE (viewer | operator | admin); it applies at their next request."""
    from topup.services import operators

    async def run(tx: Tx, _c: Any) -> None:
        if await operators.get(tx, name) is None:
            _die(f"no operator {name}")
        await operators.put(tx, cli_actor(), name, role=role)

    in_transaction(run)
    typer.echo(f"operator {name} is now {role}")


@operator_app.command("list")
def operator_list() -> None:
    """List console accounts with their roles."""
    from topup.clock import rfc3339
    from topup.services import operators

    async def run(tx: Tx, _c: Any) -> list[dict[str, Any]]:
        return await operators.list_all(tx)

    for r in in_transaction(run):
        typer.echo(f"{r['name']}\t{r['role']}\t{r['tokens']} token(s)\tcreated {rfc3339(r['created_at'])}")


@operator_app.command("remove")
def operator_remove(name: str) -> None:
    """Delete a console account and revoke its API tokens (its sessions end at their next request)."""
    from topup.services import operators

    async def run(tx: Tx, _c: Any) -> None:
        await operators.remove(tx, cli_actor(), name)

    in_transaction(run)
    typer.echo(f"operator {name} removed")


@operator_app.command("token")
def operator_token(
    name: str,
    role: RoleOpt = None,
    label: Annotated[str, typer.Option("--label", help="What the token is for")] = "cli",
) -> None:
    """Issue an API token for operator NAME (role: the account's unless --role, never more); shown once."""
    from topup.services import operators

    async def run(tx: Tx, _c: Any) -> tuple[str, dict[str, Any]]:
        account_role = await operators.role_of(tx, name)
        if account_role is None:
            _die(f"no operator {name}")
        return await operators.issue_token(tx, cli_actor(), name, label, role or account_role)

    token, shown = in_transaction(run)
    typer.echo(f"token {shown['id']} for {name} ({shown['role']}); it is shown only now:")
    typer.echo(token)


@operator_app.command("tokens")
def operator_tokens(name: str) -> None:
    """List operator NAME's API tokens (never the tokens themselves)."""
    from topup.clock import rfc3339
    from topup.services import operators

    async def run(tx: Tx, _c: Any) -> list[dict[str, Any]]:
        return await operators.tokens(tx, name)

    for r in in_transaction(run):
        state = f"revoked {rfc3339(r['revoked_at'])}" if r["revoked_at"] else "active"
        typer.echo(f"{r['id']}\t{r['role']}\t{r['name']}\t{state}\tcreated {rfc3339(r['created_at'])}")


@operator_app.command("revoke")
def operator_revoke(name: str, token_id: str) -> None:
    """Revoke operator NAME's API token TOKEN_ID at once."""
    from topup.services import operators

    async def run(tx: Tx, _c: Any) -> None:
        await operators.revoke_token(tx, cli_actor(), name, token_id)

    in_transaction(run)
    typer.echo(f"token {token_id} revoked")


# ---- keys ----------------------------------------------------------------------------------------


@keys_app.command("new")
def keys_new() -> None:
    """Print fresh random values for the secrets (put them in the environment or a secret store)."""
    typer.echo(f"TOPUP_SECRET_KEY={secrets.token_urlsafe(48)}")
    typer.echo(f"TOPUP_ADMIN_TOKEN={secrets.token_urlsafe(32)}")
    typer.echo(f"TOPUP_METRICS_TOKEN={secrets.token_urlsafe(32)}")


@keys_app.command("rotate")
def keys_rotate() -> None:
    """Re-seal every channel's supplier credentials under TOPUP_SECRET_KEY (old keys in
    TOPUP_OLD_SECRET_KEYS still open them meanwhile); afterwards the old keys can be dropped."""
    from topup.services.credentials import Rotation, rotate_credentials

    async def run(tx: Tx, c: Any) -> Rotation:
        return await rotate_credentials(tx, c.box, cli_actor())

    out = in_transaction(run)
    typer.echo(
        f"credentials of {len(out.resealed) + len(out.current)} channel(s) sealed under the current key "
        f"({len(out.resealed)} were under an old key or unsealed: {', '.join(out.resealed) or '-'})"
    )
