"""Fit an address into Sage 500's ``tciAddress`` columns without losing any of it.

Limits: AddrName and AddrLine1..5 40 characters, City 20, StateID 3, CountryID 3, PostalCode 10. Text that does
not fit moves to the next free address line; what five lines cannot hold is returned as ``overflow`` for the caller
to keep in a comment. Long US lines are split where ``usaddress`` sees a boundary (street | unit | c/o), other lines
at word boundaries. State names of US and Canadian addresses become their 2-letter codes; countries become
ISO 3166 alpha-3 codes ("USA"), unless ``[mapping] countries`` names the site's own CountryID.
"""

from __future__ import annotations

import textwrap
import unicodedata
from dataclasses import dataclass

import pycountry
import usaddress

from erpsync import model

NAME, LINE, CITY, STATE, COUNTRY, POSTAL = 40, 40, 20, 3, 3, 10
LINES = 5
STATE_COUNTRIES = ("US", "CA")  # whose regions go in StateID; elsewhere the region stays in an address line


@dataclass(frozen=True)
class SageAddress:
    name: str
    lines: tuple[str, str, str, str, str]
    city: str
    state: str
    country: str
    postal_code: str
    overflow: tuple[str, ...] = ()  # pieces that did not fit, in order


def fit(address: model.Address, countries: dict[str, str] | None = None) -> SageAddress:
    country_code = address.country_code.upper()
    us = country_code == "US"
    name, company = _clean(address.name), _clean(address.company)
    name_chunks = _wrap(name or company, NAME)
    pieces: list[str] = name_chunks[1:]
    if name and company:
        pieces.append(company)
    pieces += [t for t in (_clean(address.line1), _clean(address.line2), _clean(address.line3)) if t]

    city = _clean(address.city)
    if len(city) > CITY:
        pieces.append(city)  # the whole name in a line; the City column keeps what fits
    district = _clean(address.district)
    if district:
        pieces.append(district)
    region = _clean(address.state_or_region)
    state = state_id(country_code, region)
    if region and not state:
        pieces.append(region)
    postal = _clean(address.postal_code)
    if len(postal) > POSTAL:
        pieces.append(postal)

    chunks: list[list[str]] = [_split_us(p) if us else _wrap(p, LINE) for p in pieces]
    lines: list[str] = []
    overflow: list[str] = []
    for piece_chunks in chunks:
        free = LINES - len(lines)
        lines += piece_chunks[:free]
        if piece_chunks[free:]:
            overflow.append(" ".join(piece_chunks[free:]))
    return SageAddress(
        name=name_chunks[0] if name_chunks else "",
        lines=tuple((lines + [""] * LINES)[:LINES]),  # type: ignore[arg-type]
        city=city[:CITY].rstrip(),
        state=state,
        country=country_id(country_code, countries or {}),
        postal_code=postal if len(postal) <= POSTAL else "",
        overflow=tuple(overflow),
    )


def state_id(country_code: str, region: str) -> str:
    """US/Canadian region as its 2-letter code ("California" -> "CA"); "" where Sage's StateID cannot hold it."""
    if not region or country_code not in STATE_COUNTRIES:
        return ""
    wanted = _fold(region.rstrip("."))
    for sub in pycountry.subdivisions.get(country_code=country_code) or ():
        code = sub.code.split("-", 1)[1]
        if wanted in (_fold(sub.name), code.casefold()):
            return code
    return region.upper() if len(region) <= STATE and region.isalpha() else ""  # e.g. AA/AE/AP (US military)


def country_id(country_code: str, countries: dict[str, str]) -> str:
    if country_code in countries:
        return countries[country_code]
    country = pycountry.countries.get(alpha_2=country_code)
    return country.alpha_3 if country else country_code


def _fold(text: str) -> str:
    """Compare names ignoring case and accents: 'Québec' == 'quebec'."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def _wrap(text: str, width: int) -> list[str]:
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) if text else []


_UNIT = ("Occupancy", "Subaddress", "BuildingName")
_GROUPS = {"Recipient": "recipient", "USPSBox": "box", "PlaceName": "place", "StateName": "place",
           "ZipCode": "place", "CountryName": "place"}


def _group(label: str) -> str:
    if label.startswith(_UNIT):
        return "unit"
    return next((group for prefix, group in _GROUPS.items() if label.startswith(prefix)), "street")


def _split_us(text: str) -> list[str]:
    """A US line longer than 40: split where usaddress's parts change (street | unit | c/o), then by words."""
    if len(text) <= LINE:
        return [text]
    words = text.split(" ")
    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word) + 1
    token_groups: list[tuple[int, str]] = []
    cursor = 0
    for token, label in usaddress.parse(text):
        at = text.find(token, cursor)
        if at >= 0:
            token_groups.append((at, _group(label)))
            cursor = at + len(token)
    segments: list[list[str]] = []
    previous = None
    for word, start in zip(words, starts):
        group = next((g for at, g in token_groups if start <= at < start + len(word)), previous)
        if group != previous or not segments:
            segments.append([])
        segments[-1].append(word)
        previous = group
    chunks: list[str] = []
    for segment in (" ".join(s) for s in segments):
        if chunks and len(chunks[-1]) + 1 + len(segment) <= LINE:
            chunks[-1] += " " + segment
        else:
            chunks += _wrap(segment, LINE)
    return chunks
