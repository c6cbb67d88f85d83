"""Fit a ship-to address into Sage 500's ``tciAddress`` columns so that the label prints whole.

Limits: AddrName and AddrLine1..5 40 characters, City 20, StateID 3, CountryID 3, PostalCode 10.

* US addresses (Puerto Rico and military APO/FPO/DPO included) are standardised with USPS Publication 28 first:
  directionals, street suffixes and secondary unit designators as ``usaddress`` labels them, abbreviated with the
  tables of ``usaddress-scourgify`` (North -> N, Boulevard -> Blvd, Suite -> Ste, Building -> Bldg, Department ->
  Dept, Extension -> Ext), plus Attention -> Attn, Post Office Box -> PO Box, Urbanización -> Urb. (scourgify lets
  ``config/address_constants.yaml`` in the working directory extend its tables when it is first imported.)
* The person's name stays whole in AddrName; a name over 40 characters gets its middle names, then its first name,
  as initials. With a name, the company is the first address line.
* House number and street stay on one line: a long US line is split where ``usaddress`` sees its parts change
  (street | unit | c/o), other lines between words. Words are never cut (unless one word alone exceeds 40).
* City holds whole words only: a long US city is abbreviated (Pub 28: North -> N, Saint -> St, Heights -> Hts …);
  what still does not fit keeps its first whole words in City and the whole city in an address line (postcode
  first where the country writes it so: "10115 Berlin").
* StateID: US and Canadian regions as their 2-letter codes; elsewhere the region stays in an address line.
* More pieces than five lines: adjacent short lines are joined ("Ste 200, c/o Ann Lee"); what still does not fit
  is returned as ``overflow`` with a ``problem`` that asks for the order to be held until someone checks the label.
"""

from __future__ import annotations

import re
import textwrap
import unicodedata
from dataclasses import dataclass

import pycountry
import usaddress
from scourgify import address_constants as pub28

from erpsync import model

NAME, LINE, CITY, STATE, COUNTRY, POSTAL = 40, 40, 20, 3, 3, 10
LINES = 5
STATE_COUNTRIES = ("US", "CA")  # whose regions go in StateID; elsewhere the region stays in an address line
PUB28_COUNTRIES = ("US", "PR", "VI", "GU", "AS", "MP")  # USPS addresses (US territories may come as countries)
# countries whose address writes the postcode before the city ("10115 Berlin")
POSTCODE_FIRST = frozenset("AT BE CH CZ DE DK ES FI FR GR HU IT LU MX NL NO PL PT SE SK TR".split())


@dataclass(frozen=True)
class SageAddress:
    name: str
    lines: tuple[str, str, str, str, str]
    city: str
    state: str
    country: str
    postal_code: str
    overflow: tuple[str, ...] = ()  # pieces that did not fit, in order
    notes: tuple[str, ...] = ()  # what was changed to fit (abbreviated, initials, joined lines)
    problems: tuple[str, ...] = ()  # why the label may not print whole: someone should check it


def fit(address: model.Address, countries: dict[str, str] | None = None) -> SageAddress:
    country_code = address.country_code.upper()
    usps = country_code in PUB28_COUNTRIES
    notes: list[str] = []
    problems: list[str] = []
    name, company = _clean(address.name), _clean(address.company)
    pieces: list[str] = []
    if name:
        addr_name, rest = fit_name(name)
        if addr_name != name and not rest:
            notes.append(f"name over {NAME} characters: middle names as initials")
        if rest:
            problems.append(f"the name does not fit AddrName ({NAME} characters) even with initials; it "
                            f"continues in the first address line")
            pieces.append(rest)
        if company:
            pieces.append(company)
    else:
        company_chunks = _wrap(company, NAME)
        addr_name = company_chunks[0] if company_chunks else ""
        pieces += company_chunks[1:]

    for line in (address.line1, address.line2, address.line3):
        text = _clean(line)
        if text and usps:
            standard = standardise(text)
            if standard != text:
                notes.append(f"USPS Pub 28: {text!r} -> {standard!r}")
            text = standard
        if text:
            pieces.append(text)

    city, postal = _clean(address.city), _clean(address.postal_code)
    city_column, whole = fit_city(city, usps)
    city_piece = None  # the piece holding the whole city, when City cannot
    if city_column != city and whole:
        notes.append(f"city {city!r} abbreviated (USPS Pub 28) to {city_column!r}")
    elif city_column != city:
        city_piece = len(pieces)
        pieces.append(f"{postal} {city}" if country_code in POSTCODE_FIRST and postal else city)
    district = _clean(address.district)
    if district:
        pieces.append(district)
    region = _clean(address.state_or_region)
    state = state_id(country_code, region)
    if region and not state:
        pieces.append(region)
    if len(postal) > POSTAL:
        pieces.append(postal)

    chunks: list[tuple[int, str]] = []  # (piece, text)
    for number, piece in enumerate(pieces):
        if any(len(word) > LINE for word in piece.split()):
            problems.append(f"a word longer than an address line ({LINE} characters) is cut")
        chunks += [(number, text) for text in (_split_us(piece) if usps else _wrap(piece, LINE))]
    if len(chunks) > LINES:
        joined = _join(chunks)
        if len(joined) < len(chunks):
            notes.append("short address lines joined to fit five")
        chunks = joined
    lines = [text for _, text in chunks[:LINES]]
    if city_piece is not None:
        where = ("an address line" if pieces[city_piece] in "\n".join(lines)
                 else "the order's comments (no address line was left)")
        notes.append(f"city {city!r} over {CITY} characters: City holds {city_column!r}, the whole name is in "
                     f"{where}")
    overflow: list[str] = []
    previous = -1
    for number, text in chunks[LINES:]:  # one entry per piece: "Freistaat Bayern, Regierungsbezirk Oberbayern"
        if overflow and number == previous:
            overflow[-1] += " " + text
        else:
            overflow.append(text)
        previous = number
    if overflow:
        left = sum(len(text) for text in overflow)
        problems.append(f"the ship-to needs more than {LINES} address lines; {left} characters are only in the "
                        f"order's comments, which the label does not print")
    return SageAddress(
        name=addr_name,
        lines=tuple((lines + [""] * LINES)[:LINES]),  # type: ignore[arg-type]
        city=city_column,
        state=state,
        country=country_id(country_code, countries or {}),
        postal_code=postal if len(postal) <= POSTAL else "",
        overflow=tuple(overflow),
        notes=tuple(notes),
        problems=tuple(problems),
    )


# --- names -------------------------------------------------------------------------------------------------------

SUFFIXES = frozenset("JR SR II III IV V VI MD DDS PHD ESQ CPA RN DO".split())


def fit_name(name: str, width: int = NAME) -> tuple[str, str]:
    """(AddrName, rest): the whole name when it fits; else middle names as initials, from the last one, then the
    first name; a name that does not fit even so keeps its first whole words, unabridged, and returns the rest."""
    if len(name) <= width:
        return name, ""
    words = name.split(" ")
    last = len(words) - 1
    while last > 1 and words[last].strip(".,").upper() in SUFFIXES:
        last -= 1
    for index in [*range(last - 1, 0, -1), 0] if last > 0 else []:
        words[index] = _initial(words[index])
        if len(" ".join(words)) <= width:
            return " ".join(words), ""
    chunks = _wrap(name, width)
    return chunks[0], " ".join(chunks[1:])


def _initial(word: str) -> str:
    letters = [part[0] for part in word.split("-") if part]
    return "-".join(f"{letter}." for letter in letters) if letters else word


# --- Pub 28 ------------------------------------------------------------------------------------------------------

_DIRECTIONS = {**pub28.DIRECTIONAL_REPLACEMENTS, **pub28.AMBIGUOUS_DIRECTIONALS}
_BY_LABEL = {
    "StreetNamePreDirectional": _DIRECTIONS, "StreetNamePostDirectional": _DIRECTIONS,
    "StreetNamePreType": pub28.STREET_TYPE_ABBREVIATIONS, "StreetNamePostType": pub28.STREET_TYPE_ABBREVIATIONS,
    "OccupancyType": pub28.OCCUPANCY_TYPE_ABBREVIATIONS, "SubaddressType": pub28.OCCUPANCY_TYPE_ABBREVIATIONS,
}
_UNIT_WORDS = {**pub28.OCCUPANCY_TYPE_ABBREVIATIONS, "ATTENTION": "ATTN"}  # units, buildings, departments
_PHRASES = [  # several words, or words usaddress does not label
    (re.compile(r"\b(?:post\s+office|p\.?\s?o\.?)\s*box\b", re.I), "PO Box"),
    (re.compile(r"\bcare\s+of\b", re.I), "c/o"),
    (re.compile(r"\battention\b", re.I), "Attn"),
    (re.compile(r"\b(?:urbanizaci[oó]n\b|urb\.)", re.I), "Urb"),
]
# USPS shortens long city names with the same words (the City State file's 13-character names)
_CITY_WORDS = {**{v: k for k, v in pub28.CITY_ABBRS.items() if k != "VA"}, **pub28.DIRECTIONAL_REPLACEMENTS,
               **{word: pub28.STREET_TYPE_ABBREVIATIONS[word] for word in (
                   "HEIGHTS", "SPRINGS", "VILLAGE", "JUNCTION", "CENTER", "BEACH", "LAKE", "LAKES", "HARBOR",
                   "ISLAND", "FALLS", "CREEK", "VALLEY", "GARDENS", "HILLS", "GROVE", "RIDGE", "STATION",
                   "PORT", "POINT", "CROSSING", "MEADOWS", "PLAINS", "SHORES", "ESTATES", "MOUNTAIN")
                  if word in pub28.STREET_TYPE_ABBREVIATIONS}}


def standardise(line: str) -> str:
    """One US address line with USPS Publication 28 abbreviations; the buyer's words otherwise unchanged."""
    upper = line.upper() == line
    for pattern, short in _PHRASES:
        line = pattern.sub(short.upper() if upper else short, line)
    words = line.split(" ")
    labels = _word_labels(line, words)
    out = []
    for word, label in zip(words, labels):
        core = word.rstrip(".,;:")
        tail = word[len(core):].replace(".", "")
        table = _UNIT_WORDS if (label or "").startswith(_UNIT + ("Recipient",)) else _BY_LABEL.get(label or "", {})
        short = table.get(core.upper())
        if short is None or short == core.upper():
            out.append(word)
            continue
        out.append(_case(short, upper) + tail)
    return " ".join(out)


def _case(short: str, upper: bool) -> str:
    """A Pub 28 abbreviation in the line's style: 'Ste' in 'Suite 200', 'STE' in 'SUITE 200'; directionals upper."""
    return short if upper or short in _DIRECTIONS.values() else short.capitalize()


def fit_city(city: str, usps: bool) -> tuple[str, bool]:
    """(City column, whole): the city when it fits; a US city abbreviated as USPS does (whole: True when that
    fits); else its first whole words (whole: False, the caller keeps the full name in an address line)."""
    if len(city) <= CITY:
        return city, True
    words = city.split(" ")
    if usps:
        upper = city.upper() == city
        short = [_case(_CITY_WORDS[w.upper().rstrip(".")], upper) if w.upper().rstrip(".") in _CITY_WORDS else w
                 for w in words]
        if len(" ".join(short)) <= CITY:
            return " ".join(short), True
        words = short
    kept: list[str] = []
    for word in words:
        if len(" ".join([*kept, word])) > CITY:
            break
        kept.append(word)
    return " ".join(kept), False


def ambiguity(address: model.Address) -> str | None:
    """Why ``usaddress`` cannot read a US ship-to unambiguously (two street numbers, two streets …), or None.
    Lines addressed to a person (c/o, Attn) and the company are left out: they are not the delivery point. The
    lines are read as they will be printed, standardised (usaddress reads "Fl 11" as a unit, "Floor 11" not)."""
    if address.country_code.upper() not in PUB28_COUNTRIES:
        return None
    company = _clean(address.company).casefold()
    street = [standardise(t) for t in (_clean(x) for x in (address.line1, address.line2, address.line3))
              if t and t.casefold() != company and not re.match(r"(c/o|care of|attn|attention)\b", t, re.I)]
    if not street:
        return "the ship-to has no street line"
    last = " ".join(filter(None, (_clean(address.city), _clean(address.state_or_region),
                                  _clean(address.postal_code))))
    text = ", ".join([*street, last]) if last else ", ".join(street)
    try:
        parsed, kind = usaddress.tag(text)
    except usaddress.RepeatedLabelError as exc:
        runs = [label for n, (_, label) in enumerate(exc.parsed_string)
                if n == 0 or exc.parsed_string[n - 1][1] != label]  # "New York": one PlaceName of two words
        repeated = sorted({label for label in runs if runs.count(label) > 1})
        if all(label.startswith(_UNIT + ("Recipient",) + _PLACE) for label in repeated):
            # "Floor 3 Room 301": two units of one delivery point; "9 Broadway, Rear, New York": a word read as a
            # second place, but city, state and ZIP come in their own fields: nothing a carrier must guess
            return None
        return f"usaddress reads more than one {', '.join(repeated)} in the street lines"
    if kind == "Ambiguous":
        return "usaddress cannot tell whether the street lines are a street address, a PO box or an intersection"
    return None


# --- regions and countries ---------------------------------------------------------------------------------------


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


# --- text --------------------------------------------------------------------------------------------------------


def _fold(text: str) -> str:
    """Compare names ignoring case and accents: 'Québec' == 'quebec'."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def _wrap(text: str, width: int) -> list[str]:
    """Between words; a single word longer than ``width`` is the only thing ever cut."""
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) if text else []


def _join(chunks: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Join the shortest adjacent pair that fits one line, until five lines hold everything or nothing joins."""
    chunks = list(chunks)
    while len(chunks) > LINES:
        pairs = [(len(a) + len(b), i) for i, ((_, a), (_, b)) in enumerate(zip(chunks, chunks[1:]))
                 if len(a) + 2 + len(b) <= LINE]
        if not pairs:
            break
        _, i = min(pairs)
        chunks[i:i + 2] = [(chunks[i + 1][0], f"{chunks[i][1]}, {chunks[i + 1][1]}")]
    return chunks


def _word_labels(text: str, words: list[str]) -> list[str | None]:
    """The usaddress label of each space-separated word (of its first token)."""
    spans: list[tuple[int, str]] = []
    cursor = 0
    for token, label in usaddress.parse(text):
        at = text.find(token, cursor)
        if at >= 0:
            spans.append((at, label))
            cursor = at + len(token)
    labels: list[str | None] = []
    position = 0
    for word in words:
        labels.append(next((label for at, label in spans if position <= at < position + len(word)), None))
        position += len(word) + 1
    return labels


_UNIT = ("Occupancy", "Subaddress", "BuildingName")
_PLACE = ("PlaceName", "StateName", "ZipCode", "CountryName")
_GROUPS = {"Recipient": "recipient", "USPSBox": "box", "PlaceName": "place", "StateName": "place",
           "ZipCode": "place", "CountryName": "place"}


def _group(label: str | None) -> str | None:
    if label is None:
        return None
    if label.startswith(_UNIT):
        return "unit"
    return next((group for prefix, group in _GROUPS.items() if label.startswith(prefix)), "street")


def _split_us(text: str) -> list[str]:
    """A US line longer than 40: split where usaddress's parts change (street | unit | c/o), then by words."""
    if len(text) <= LINE:
        return [text]
    words = text.split(" ")
    segments: list[list[str]] = []
    previous = None
    for word, label in zip(words, _word_labels(text, words)):
        group = _group(label) or previous
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
