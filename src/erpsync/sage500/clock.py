"""Sage's clock: Sage 500 keeps local server time in naive DATETIME columns (TranDate, ship dates, CreateDate).

:class:`SageClock` converts at the gateway's boundary, both ways, with :mod:`zoneinfo`: an aware datetime going to
Sage becomes the naive wall-clock time of ``[sage500] timezone``; a naive value read from Sage becomes aware UTC.
A wall-clock time that occurs twice (the hour repeated when daylight saving ends) is read as the first of the two
(``fold=0``, still daylight time); one that does not exist (the hour skipped when it starts) as standard time.
The default zone is UTC (the replica, and a site that runs SQL Server on UTC).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from erpsync.errors import ConfigError

UTC = ZoneInfo("UTC")


def zone(name: str | None) -> ZoneInfo:
    """The IANA zone ``name`` (None or empty: UTC); an unknown name is a :class:`ConfigError` naming the key."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"[sage500] timezone {name!r} is not an IANA time zone name (e.g. 'America/Chicago', "
                          f"'Europe/Berlin', 'UTC'); set it to the time zone of the Sage SQL Server") from None


@dataclass(frozen=True)
class SageClock:
    zone: ZoneInfo = UTC

    @classmethod
    def named(cls, name: str | None) -> "SageClock":
        return cls(zone(name))

    def to_sage(self, value: datetime | None = None) -> datetime:
        """Sage's naive local time of ``value`` (aware; None: now). A naive value is taken as already Sage's."""
        value = value or datetime.now(timezone.utc)
        if value.tzinfo is None:
            return value
        return value.astimezone(self.zone).replace(tzinfo=None)

    def from_sage(self, value: datetime | None) -> datetime | None:
        """The aware UTC instant of a naive Sage value (None stays None; an aware value is only moved to UTC)."""
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.zone)
        return value.astimezone(timezone.utc)
