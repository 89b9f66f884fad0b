"""Start-up refusal of development secrets anywhere but on loopback.

`topup serve` (and `topup demo`) on an interface other than loopback, and `topup worker` against a
database on another host, refuse to start while a secret they use is the development default or
shorter than `MIN_SECRET_LEN` characters, with one line naming each setting to fix.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from topup.config import DEV_ADMIN_TOKEN, DEV_SECRET_KEY, Settings

MIN_SECRET_LEN = 32
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def is_loopback(host: str | None) -> bool:
    """Is `host` a loopback address or name? An empty host or 0.0.0.0 / :: (every interface) is not."""
    h = (host or "").strip().strip("[]").lower()
    if h in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False


def weak_secrets(settings: Settings, *, admin: bool = True) -> list[str]:
    """Each setting whose secret is a development default or too short, with why (empty when all are fine).

    The session and sandbox keys are derived from the master key unless set explicitly; then they are
    checked themselves. `admin=False` leaves out the admin token and the session key (a worker uses neither).
    """
    checks: list[tuple[str, str | None, str | None]] = [
        ("TOPUP_SECRET_KEY", settings.secret_key, DEV_SECRET_KEY)
    ]
    if admin:
        checks.insert(0, ("TOPUP_ADMIN_TOKEN", settings.admin_token, DEV_ADMIN_TOKEN))
        if settings.session_secret is not None:
            checks.append(("TOPUP_SESSION_SECRET", settings.session_secret, None))
    if settings.sandbox_secret is not None:
        checks.append(("TOPUP_SANDBOX_SECRET", settings.sandbox_secret, None))
    problems = []
    for name, value, default in checks:
        if default is not None and value == default:
            problems.append(f"{name} (the development default)")
        elif len(value or "") < MIN_SECRET_LEN:
            problems.append(f"{name} (shorter than {MIN_SECRET_LEN} characters)")
    return problems


def refusal(settings: Settings, listening_on: str) -> str | None:
    """The one line `topup serve` prints instead of starting, or None when it may start."""
    if is_loopback(listening_on):
        return None
    problems = weak_secrets(settings)
    if not problems:
        return None
    return (
        f"refusing to listen on {listening_on or 'every interface'} with development secrets: set "
        + ", ".join(problems)
        + f" to {MIN_SECRET_LEN}+ random characters (`topup keys new` prints fresh values; "
        "TOPUP_SECRET_KEY_FILE may name a file holding the master key)"
    )


def worker_refusal(settings: Settings) -> str | None:
    """A worker listens nowhere; it refuses the default master key when its database is on another host
    (a real deployment), because supplier credentials would be sealed under a key everyone knows."""
    url = settings.database_url
    if url.startswith("sqlite"):
        return None
    host = urlsplit(url.replace("+asyncpg", "")).hostname or ""
    if not host or host.startswith("/") or is_loopback(host):
        return None
    problems = weak_secrets(settings, admin=False)
    if not problems:
        return None
    return (
        f"refusing to run against the database at {host} with development secrets: set "
        + ", ".join(problems)
        + f" to {MIN_SECRET_LEN}+ random characters (`topup keys new` prints fresh values)"
    )
