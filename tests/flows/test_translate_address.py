"""Ship-to labels that fit Sage's tciAddress columns and the carrier: USPS Publication 28 for US addresses, the
person's name whole, house number and street on one line, City in whole words, other countries' conventions, and
properties (hypothesis): no field over its limit, no word lost or cut, overflow only once five lines are full."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings, strategies as st
from scourgify import address_constants as pub28

from erpsync import model
from erpsync.sage500.address import (ambiguity, country_id, fit, fit_city, fit_name, standardise,
                                     state_id)


def address(**fields) -> model.Address:
    return model.Address(**{"country_code": "US", **fields})


def squash(text: str) -> str:
    return "".join(text.split())


def everything(fitted) -> str:
    return "".join([fitted.name, *fitted.lines, *fitted.overflow, fitted.city, fitted.state, fitted.postal_code])


# every abbreviation Pub 28 (and erpsync's few additions) may put in place of a word
ABBREVIATIONS: dict[str, set[str]] = {}
for table in (pub28.DIRECTIONAL_REPLACEMENTS, pub28.AMBIGUOUS_DIRECTIONALS, pub28.STREET_TYPE_ABBREVIATIONS,
              pub28.OCCUPANCY_TYPE_ABBREVIATIONS, {v: k for k, v in pub28.CITY_ABBRS.items()},
              {"ATTENTION": "ATTN", "URBANIZACIÓN": "URB", "URBANIZACION": "URB", "CARE": "C/O", "OF": "C/O"}):
    for long, short in table.items():
        ABBREVIATIONS.setdefault(long, set()).add(short)


def bare(word: str) -> str:
    return word.strip(".,;:").upper()


def output_words(fitted) -> set[str]:
    return {bare(w) for text in (fitted.name, *fitted.lines, *fitted.overflow, fitted.city) for w in text.split()}


def missing_words(source: model.Address, fitted, *, initials: bool = True) -> list[str]:
    """Words of the source that are in the Sage fields neither as themselves nor as their Pub 28 abbreviation (nor,
    for the name, as an initial)."""
    shown = output_words(fitted)
    missing = []
    name_words = set((source.name or "").split())
    for text in (source.name, source.company, source.line1, source.line2, source.line3, source.city,
                 source.district):
        for word in (text or "").split():
            key = bare(word)
            if len(word) > 40:
                continue  # cut: only a word longer than a line is (the property below checks it is flagged)
            if not key or key in shown or ABBREVIATIONS.get(key, set()) & shown:
                continue
            initial = "-".join(f"{part[0]}." for part in word.split("-") if part)
            if initials and word in name_words and bare(initial) in shown:
                continue
            missing.append(word)
    return missing


# --- Pub 28 -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("line, standard", [
    ("410 Terry Avenue North", "410 Terry Ave N"),
    ("1600 Pennsylvania Avenue Northwest Suite 200 Building 7", "1600 Pennsylvania Ave NW Ste 200 Bldg 7"),
    ("12 Martin Luther King Junior Boulevard Southwest", "12 Martin Luther King Junior Blvd SW"),
    ("123 North Main Street Extension", "123 N Main Street Ext"),
    ("Attention: Receiving Department", "Attn: Receiving Dept"),
    ("Building 4 Floor 2", "Bldg 4 Fl 2"),
    ("P.O. Box 1234", "PO Box 1234"),
    ("Post Office Box 77", "PO Box 77"),
    ("Care of Jane Smith", "c/o Jane Smith"),
    ("Urbanización Las Gladiolas", "Urb Las Gladiolas"),
    ("URB. VILLA CAROLINA", "URB VILLA CAROLINA"),
    ("100 MAIN STREET SUITE 5", "100 MAIN ST STE 5"),  # an all-capitals line stays in capitals
    ("North Street 5", "North St 5"),  # a street named North is not a direction
    ("1 Infinite Loop", "1 Infinite Loop"),
    ("PSC 802 Box 74", "PSC 802 Box 74"),
])
def test_us_lines_are_standardised_with_usps_publication_28(line, standard):
    assert standardise(line) == standard


def test_long_us_business_address_prints_whole():
    """The shape of issue 9: a long name, a long company, a long street, a suite, an attention line and a city
    over 20 characters. Before: the name split across AddrName and AddrLine1, the city cut mid-word, the rest in a
    line comment."""
    source = address(name="Christopher Alexander Montgomery", company="Northwestern Regional Distribution LLC",
                     line1="1234 North Martin Luther King Junior Boulevard", line2="Suite 1500 Building C",
                     line3="Attention Receiving Department", city="Rancho Santa Margarita",
                     state_or_region="California", postal_code="92688-1234")
    fitted = fit(source)
    assert fitted.name == "Christopher Alexander Montgomery"
    assert fitted.lines == ("Northwestern Regional Distribution LLC", "1234 N Martin Luther King Junior Blvd",
                            "Ste 1500 Bldg C", "Attn Receiving Dept", "Rancho Santa Margarita")
    assert (fitted.city, fitted.state, fitted.postal_code, fitted.country) == ("Rancho Santa", "CA", "92688-1234",
                                                                               "USA")
    assert fitted.overflow == () and fitted.problems == ()
    assert missing_words(source, fitted) == []


def test_a_name_over_40_gets_middle_initials_and_stays_whole_in_addr_name():
    long_name = "Maximilian Alexander Bartholomew Fitzgerald-Smythe III"
    fitted = fit(address(name=long_name, line1="1 A St", city="Austin", state_or_region="TX"))
    assert fitted.name == "Maximilian A. B. Fitzgerald-Smythe III"
    assert fitted.lines[0] == "1 A St" and fitted.problems == ()
    assert fit_name("Anna-Maria Josephine Catherine Elisabeth Wolkenstein-Trostburg") == (
        "A.-M. J. C. E. Wolkenstein-Trostburg", "")


def test_a_name_that_cannot_fit_even_as_initials_continues_in_a_line_and_asks_for_a_check():
    fitted = fit(address(name="Bartholomew Wolkensteinrodeneck-Trostburgheimerstein", line1="1 A St", city="X"))
    assert fitted.name == "Bartholomew"  # initials would lose letters and fit no better
    assert fitted.lines[0] == "Wolkensteinrodeneck-Trostburgheimerstein"
    assert fitted.problems and "name" in fitted.problems[0]


def test_company_alone_is_the_name():
    assert fit(address(company="Acme Corp", line1="1 A St")).name == "Acme Corp"


@pytest.mark.parametrize("city, usps, column, whole", [
    ("Seattle", True, "Seattle", True),
    ("North Lauderdale Heights", True, "N Lauderdale Hts", True),
    ("SAINT PETERSBURG BEACH", True, "ST PETERSBURG BCH", True),
    ("Rancho Santa Margarita", True, "Rancho Santa", False),
    ("Rancho Santa Margarita", False, "Rancho Santa", False),
    ("Llanfairpwllgwyngyllgogerychwyrndrobwll", False, "", False),
])
def test_city_holds_whole_words_only(city, usps, column, whole):
    assert fit_city(city, usps) == (column, whole)


def test_a_city_abbreviated_per_pub_28_needs_no_extra_line():
    fitted = fit(address(name="J", line1="1 A St", city="North Lauderdale Heights", state_or_region="FL",
                         postal_code="33068"))
    assert fitted.city == "N Lauderdale Hts" and fitted.lines == ("1 A St", "", "", "", "")


# --- real-world shapes ------------------------------------------------------------------------------------------


def test_apo_and_fpo_military_addresses():
    apo = address(name="SGT Jane Doe", line1="Unit 2050 Box 4190", city="APO", state_or_region="AE",
                  postal_code="09204-4190")
    fitted = fit(apo)
    assert (fitted.lines[0], fitted.city, fitted.state, fitted.postal_code) == (
        "Unit 2050 Box 4190", "APO", "AE", "09204-4190")
    assert ambiguity(apo) is None and fitted.problems == ()
    fpo = fit(address(name="John Roe", line1="USS Ronald Reagan CVN 76", city="FPO", state_or_region="AP",
                      postal_code="96616-2880"))
    assert (fpo.lines[0], fpo.city, fpo.state) == ("USS Ronald Reagan CVN 76", "FPO", "AP")


def test_po_boxes():
    source = address(name="Ann Lee", line1="P.O. Box 1234", city="Austin", state_or_region="Texas",
                     postal_code="78701")
    fitted = fit(source)
    assert fitted.lines[0] == "PO Box 1234" and fitted.state == "TX"
    assert ambiguity(source) is None


def test_c_o_lines_are_kept_and_not_read_as_the_street():
    source = address(name="Ann Lee", line1="c/o Robert Smith", line2="250 West 57th Street Apartment 4B",
                     city="New York", state_or_region="NY", postal_code="10107")
    fitted = fit(source)
    assert fitted.lines[:2] == ("c/o Robert Smith", "250 W 57th St Apt 4B")
    assert ambiguity(source) is None


def test_puerto_rico_urbanizations():
    source = address(name="Luis Rivera", line1="Urbanización Las Gladiolas", line2="150 Calle A",
                     city="San Juan", state_or_region="PR", postal_code="00926-3232")
    fitted = fit(source)
    assert fitted.lines[:2] == ("Urb Las Gladiolas", "150 Calle A")
    assert (fitted.city, fitted.state, fitted.postal_code) == ("San Juan", "PR", "00926-3232")
    as_country = fit(model.Address(name="Luis Rivera", line1="URB Las Gladiolas", line2="150 Calle A",
                                   city="San Juan", postal_code="00926", country_code="PR"))
    assert (as_country.lines[:2], as_country.country) == (("URB Las Gladiolas", "150 Calle A"), "PRI")


def test_canadian_addresses_keep_their_words_and_get_the_province_code():
    source = model.Address(name="Marie Tremblay", line1="1234 Rue Sainte-Catherine Ouest", line2="Bureau 500",
                           city="Montréal", state_or_region="Québec", postal_code="H3G 1P1", country_code="CA")
    fitted = fit(source, {"CA": "CAN"})
    assert fitted.lines[:2] == ("1234 Rue Sainte-Catherine Ouest", "Bureau 500")
    assert (fitted.city, fitted.state, fitted.postal_code, fitted.country) == ("Montréal", "QC", "H3G 1P1", "CAN")
    assert ambiguity(source) is None  # usaddress reads US addresses only


def test_german_addresses_postcode_before_city_and_no_state():
    fitted = fit(model.Address(name="Jürgen Müller", company="Müller Maschinenbau GmbH", line1="Hauptstraße 5",
                               city="Frankfurt am Main Höchst", state_or_region="Hessen", postal_code="65929",
                               country_code="DE"))
    assert fitted.name == "Jürgen Müller"
    assert fitted.lines == ("Müller Maschinenbau GmbH", "Hauptstraße 5", "65929 Frankfurt am Main Höchst", "Hessen",
                            "")
    assert (fitted.city, fitted.state, fitted.postal_code, fitted.country) == (
        "Frankfurt am Main", "", "65929", "DEU")


def test_international_address_keeps_region_and_district_in_lines():
    fitted = fit(model.Address(name="James Wilson", company="Wilson Electronics Ltd", line1="123 High Street",
                               line2="Unit 4B", city="Manchester", district="Greater Manchester",
                               state_or_region="England", postal_code="M1 2AB", country_code="GB"))
    assert fitted.lines == ("Wilson Electronics Ltd", "123 High Street", "Unit 4B", "Greater Manchester", "England")
    assert (fitted.city, fitted.state, fitted.country, fitted.postal_code) == ("Manchester", "", "GBR", "M1 2AB")


def test_short_lines_are_joined_before_anything_overflows():
    fitted = fit(model.Address(name="N", company="Co", line1="Hauptstraße 5", line2="Hinterhaus", line3="3. OG",
                               city="Berlin", district="Mitte", state_or_region="Berlin Land", postal_code="10115",
                               country_code="DE"))
    assert fitted.overflow == () and fitted.problems == ()
    assert all(fitted.lines) and any(", " in line for line in fitted.lines)
    assert fitted.notes == ("short address lines joined to fit five",)


def test_notes_say_what_happened_when_nothing_could_be_joined():
    """Six pieces none of which pair into one line: no 'joined' note, and the whole city is said to be where it
    went (the comments), not in an address line."""
    fitted = fit(address(name="Maria Guadalupe Fernanda Esperanza Rodriguez-Villanueva",
                         company="Southwestern Regional Medical Supply Distribution Inc",
                         line1="12345 South Saint Andrews Boulevard Northwest",
                         line2="Building 7 Suite 1500 Receiving Department", line3="Attention Accounts Payable",
                         city="Rancho Santa Margarita", state_or_region="California", postal_code="92688-1234"))
    assert fitted.overflow == ("Rancho Santa Margarita",) and fitted.city == "Rancho Santa"
    assert "short address lines joined to fit five" not in fitted.notes
    assert fitted.notes[-1].endswith("the whole name is in the order's comments (no address line was left)")
    assert fitted.problems and "more than 5 address lines" in fitted.problems[0]


def test_overflow_is_the_last_resort_and_asks_for_a_check():
    fitted = fit(model.Address(name="N", line1="L1 " * 20, line2="L2 " * 20, line3="L3 " * 20, city="C",
                               postal_code="12345678901234", country_code="DE"))
    assert fitted.postal_code == "" and all(len(line) <= 40 for line in fitted.lines) and all(fitted.lines)
    assert fitted.overflow and "12345678901234" in fitted.overflow[-1]
    assert fitted.problems and "more than 5 address lines" in fitted.problems[-1]


# --- ambiguity ----------------------------------------------------------------------------------------------------


def test_two_street_numbers_are_ambiguous_and_a_plain_address_is_not():
    assert "more than one AddressNumber" in ambiguity(address(line1="123 Main St", line2="456 Oak Ave",
                                                              city="Austin", state_or_region="TX",
                                                              postal_code="78701"))
    assert ambiguity(address(line1="123 Main St", line2="Apt 4", city="Austin", state_or_region="TX",
                             postal_code="78701")) is None
    # two units of one building (floor and room) are no ambiguity for a carrier; no street number at all is
    assert ambiguity(address(line1="123 Main St", line2="Floor 3 Room 301", city="Austin", state_or_region="TX",
                             postal_code="78701")) is None
    # read as printed (Pub 28): usaddress took the 11 of "Floor 11" for a second street name; a word it reads as a
    # second place ("Rear" before "New York") is no ambiguity when city, state and ZIP have their own fields
    for unit, city in (("Floor 11", "Austin"), ("Rear", "New York"), ("Lobby", "New York")):
        assert ambiguity(address(line1="250 West 57th Street", line2=unit, city=city, state_or_region="NY",
                                 postal_code="10107")) is None, unit
    assert "cannot tell" in ambiguity(address(line1="W 123 Main St", city="Austin", state_or_region="TX",
                                              postal_code="78701"))
    assert ambiguity(address(company="Acme", line1="Acme", city="Austin")) == "the ship-to has no street line"
    assert ambiguity(model.Address(line1="1 A", line2="2 B", city="Paris", country_code="FR")) is None


def test_state_and_country_helpers():
    assert state_id("US", "New York") == "NY" and state_id("US", "ny") == "NY" and state_id("US", "AE") == "AE"
    assert state_id("US", "Nowhere Land") == "" and state_id("GB", "ENG") == ""
    assert state_id("US", "Puerto Rico") == "PR"
    assert country_id("US", {}) == "USA" and country_id("XK", {}) == "XK"  # Kosovo: no ISO alpha-3 assigned


# --- properties ---------------------------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(categories=("L", "N", "P", "S", "Zs")), max_size=90)
WORDS = st.lists(st.sampled_from([
    "North", "Avenue", "Suite", "Building", "Boulevard", "Street", "Apartment", "Department", "Extension", "West",
    "Saint", "Heights", "Main", "Oak", "1200", "4B", "Rancho", "Santa", "Margarita", "Christopher", "Alexander",
    "Montgomery-Wellington", "Attention", "Floor", "Room", "c/o", "Incorporated", "12", "Lake", "Village"]),
    max_size=9).map(" ".join)
REGIONS = st.one_of(TEXT, st.sampled_from(["California", "TX", "new york", "Québec", "Ontario", "England", "AP"]))
FIELD = st.one_of(TEXT, WORDS)


@settings(max_examples=300, deadline=None)
@given(name=st.none() | FIELD, company=st.none() | FIELD, line1=FIELD, line2=FIELD, line3=FIELD,
       city=st.none() | FIELD, district=st.none() | TEXT, region=st.none() | REGIONS, postal=st.none() | TEXT,
       country=st.sampled_from(["US", "PR", "CA", "GB", "DE", "JP", "BR"]))
def test_property_limits_no_word_lost_or_cut_and_overflow_last(name, company, line1, line2, line3, city, district,
                                                               region, postal, country):
    source = model.Address(name=name, company=company, line1=line1, line2=line2, line3=line3, city=city,
                           district=district, state_or_region=region, postal_code=postal, country_code=country)
    fitted = fit(source)
    assert len(fitted.name) <= 40 and all(len(line) <= 40 for line in fitted.lines) and len(fitted.lines) == 5
    assert len(fitted.city) <= 20 and len(fitted.state) <= 3 and len(fitted.postal_code) <= 10
    assert len(fitted.country) == 3
    # nothing lost: every word is shown, or its Pub 28 abbreviation, or (name) its initial
    assert missing_words(source, fitted) == []
    if postal:
        assert squash(postal) in squash(everything(fitted))
    if region and not fitted.state:
        assert squash(region) in squash(everything(fitted))
    # words never cut: every word shown is a word of the source or an abbreviation or initial of one
    long_words = any(len(w) > 40 for f in (name, company, line1, line2, line3, city, district, region, postal)
                     for w in (f or "").split())
    if long_words:
        assert fitted.problems
    else:
        source_words = {bare(w) for f in (name, company, line1, line2, line3, city, district, region, postal)
                        for w in (f or "").split()}
        allowed = source_words | {a for w in source_words for a in ABBREVIATIONS.get(w, ())} | {"PO", "C/O", "ATTN",
                                                                                                "URB"}
        for word in output_words(fitted):
            assert not word or word in allowed or re.fullmatch(r"(\w\.)(-\w\.)*", word + "."), word
        city_words = {bare(w) for w in (city or "").split()}
        assert all(bare(w) in city_words | {a for c in city_words for a in ABBREVIATIONS.get(c, ())}
                   for w in fitted.city.split())
    if fitted.overflow:  # overflow only once every line is used, and never without a problem to check
        assert all(fitted.lines) and fitted.problems


# --- properties of real-world shapes ------------------------------------------------------------------------------

FIRST = st.sampled_from(["Ann", "José", "Christopher", "Mary-Kate", "Nguyen", "Siobhan", "Jean-Baptiste", "Li"])
MIDDLE = st.lists(st.sampled_from(["Alexander", "Marie", "Guadalupe", "Jonathan", "Anne", "Fitzgerald"]), max_size=3)
LAST = st.sampled_from(["Lee", "Rodriguez-Villanueva", "Montgomery", "Müller", "O'Brien", "Worthington", "Tremblay"])
PERSON = st.builds(lambda first, middle, last: " ".join([first, *middle, last]), FIRST, MIDDLE, LAST)
NUMBER = st.integers(1, 99999).map(str)
STREET = st.builds(lambda number, pre, name, kind: " ".join(filter(None, [number, pre, name, kind])), NUMBER,
                   st.sampled_from(["", "North", "South", "West", "East"]),
                   st.sampled_from(["Main", "Oak", "Martin Luther King Junior", "Saint Andrews", "57th", "Pine"]),
                   st.sampled_from(["Street", "Avenue", "Boulevard", "Road", "Drive", "Lane", "Court", "Parkway"]))
UNIT = st.builds(lambda kind, ident: f"{kind} {ident}", st.sampled_from(["Suite", "Apartment", "Building", "Floor",
                                                                        "Unit", "Room", "Department"]),
                 st.integers(1, 2000).map(str))


def shows_whole(fitted, line: str) -> bool:
    """``line`` (house number and street, say) is one Sage address line, or part of one."""
    return any(line in shown for shown in fitted.lines)


def within_limits(fitted) -> None:
    assert len(fitted.name) <= 40 and all(len(line) <= 40 for line in fitted.lines) and len(fitted.city) <= 20
    assert len(fitted.state) <= 3 and len(fitted.postal_code) <= 10 and len(fitted.country) == 3


@settings(max_examples=60, deadline=None)
@given(name=PERSON, unit=st.integers(1000, 9999), box=st.integers(1, 9999), kind=st.sampled_from(["Unit", "PSC", "CMR"]),
       city=st.sampled_from(["APO", "FPO", "DPO"]), state=st.sampled_from(["AA", "AE", "AP"]),
       zip_=st.from_regex(r"(09|34|96)\d{3}(-\d{4})?", fullmatch=True))
def test_property_military_addresses(name, unit, box, kind, city, state, zip_):
    source = address(name=name, line1=f"{kind} {unit} Box {box}", city=city, state_or_region=state, postal_code=zip_)
    fitted = fit(source)
    within_limits(fitted)
    assert fitted.lines[0] == f"{kind} {unit} Box {box}"
    assert (fitted.city, fitted.state, fitted.postal_code, fitted.overflow) == (city, state, zip_, ())
    assert missing_words(source, fitted) == []


@settings(max_examples=60, deadline=None)
@given(name=PERSON, box=st.integers(1, 999999), spelling=st.sampled_from(["P.O. Box", "PO Box", "Post Office Box",
                                                                         "P O Box", "PO BOX"]),
       city=st.sampled_from(["Austin", "Salt Lake City", "Rancho Santa Margarita", "North Las Vegas"]))
def test_property_po_boxes(name, box, spelling, city):
    source = address(name=name, line1=f"{spelling} {box}", city=city, state_or_region="Texas", postal_code="78701")
    fitted = fit(source)
    within_limits(fitted)
    assert fitted.lines[0].upper() == f"PO BOX {box}" and fitted.state == "TX" and fitted.overflow == ()
    assert ambiguity(source) is None


@settings(max_examples=60, deadline=None)
@given(name=PERSON, other=PERSON, care=st.sampled_from(["c/o", "C/O", "Care of"]), street=STREET,
       unit=st.just("") | UNIT)
def test_property_care_of_lines(name, other, care, street, unit):
    source = address(name=name, line1=f"{care} {other}", line2=street, line3=unit, city="New York",
                     state_or_region="NY", postal_code="10107")
    fitted = fit(source)
    within_limits(fitted)
    if len(other) <= 36:
        assert shows_whole(fitted, f"c/o {other}" if care == "Care of" else f"{care} {other}")
    assert shows_whole(fitted, standardise(street))  # house number and street on one line
    assert missing_words(source, fitted) == [] and fitted.overflow == ()
    assert ambiguity(source) is None


@settings(max_examples=60, deadline=None)
@given(name=PERSON, urb=st.sampled_from(["Urbanización", "Urbanizacion", "URB", "Urb."]),
       place=st.sampled_from(["Las Gladiolas", "Villa Carolina", "Jardines de Country Club", "Santa Rosa"]),
       number=NUMBER, calle=st.sampled_from(["Calle A", "Calle Las Flores", "Ave Ponce de León"]),
       city=st.sampled_from(["San Juan", "Carolina", "Bayamón", "Trujillo Alto", "Sabana Grande"]),
       as_country=st.booleans())
def test_property_puerto_rico_urbanizations(name, urb, place, number, calle, city, as_country):
    fields = dict(name=name, line1=f"{urb} {place}", line2=f"{number} {calle}", city=city, postal_code="00926")
    source = (model.Address(country_code="PR", **fields) if as_country
              else address(state_or_region="Puerto Rico", **fields))
    fitted = fit(source)
    within_limits(fitted)
    assert fitted.lines[0].upper() == f"URB {place.upper()}"
    assert shows_whole(fitted, f"{number} {calle}") and fitted.city == city and fitted.overflow == ()
    assert (fitted.state, fitted.country) == (("", "PRI") if as_country else ("PR", "USA"))


@settings(max_examples=60, deadline=None)
@given(name=PERSON, number=NUMBER, street=st.sampled_from(["Rue Sainte-Catherine Ouest", "Boulevard René-Lévesque",
                                                           "Yonge Street", "Avenue du Parc", "Chemin de la Côte"]),
       unit=st.just("") | st.sampled_from(["Bureau 500", "Suite 1200", "App. 4"]),
       city=st.sampled_from(["Montréal", "Toronto", "Saint-Jean-sur-Richelieu", "Notre-Dame-de-l'Île-Perrot"]),
       province=st.sampled_from([("Québec", "QC"), ("QC", "QC"), ("Ontario", "ON"), ("British Columbia", "BC")]))
def test_property_canadian_addresses(name, number, street, unit, city, province):
    source = model.Address(name=name, line1=f"{number} {street}", line2=unit, city=city, state_or_region=province[0],
                           postal_code="H3G 1P1", country_code="CA")
    fitted = fit(source, {"CA": "CAN"})
    within_limits(fitted)
    assert fitted.lines[0] == f"{number} {street}"  # no US abbreviations in Canada
    assert (fitted.state, fitted.country, fitted.postal_code) == (province[1], "CAN", "H3G 1P1")
    if len(city) <= 20:
        assert fitted.city == city
    else:  # a word is never cut: the city is whole in an address line
        assert city in fitted.lines and city.startswith(fitted.city) and len(fitted.city) < 20
    assert missing_words(source, fitted) == [] and fitted.overflow == ()


@settings(max_examples=60, deadline=None)
@given(name=PERSON, company=st.none() | st.sampled_from(["Müller Maschinenbau GmbH", "Schmidt & Söhne KG"]),
       street=st.sampled_from(["Hauptstraße", "Friedrich-Ebert-Allee", "Am Alten Markt", "Königsallee"]),
       number=st.integers(1, 300).map(str), postcode=st.from_regex(r"\d{5}", fullmatch=True),
       city=st.sampled_from(["Berlin", "Frankfurt am Main", "Garmisch-Partenkirchen", "Neustadt an der Weinstraße",
                             "Freiburg im Breisgau"]),
       region=st.none() | st.sampled_from(["Bayern", "Hessen", "Nordrhein-Westfalen"]))
def test_property_german_addresses(name, company, street, number, postcode, city, region):
    source = model.Address(name=name, company=company, line1=f"{street} {number}", city=city, state_or_region=region,
                           postal_code=postcode, country_code="DE")
    fitted = fit(source)
    within_limits(fitted)
    assert f"{street} {number}" in fitted.lines and fitted.state == "" and fitted.country == "DEU"
    if region:
        assert region in fitted.lines  # no state in Germany: the Land stays in a line
    if len(city) > 20:  # the postcode before the city, as Germans write it
        assert f"{postcode} {city}" in fitted.lines
    assert fitted.postal_code == postcode and missing_words(source, fitted) == [] and fitted.overflow == ()
