#!/usr/bin/env python3
"""Reference evaluation of a fleet CSV under the 2025 UVEU policy (US headquarters).

What it is
    An independent oracle for `veuctl plan FLEET.csv --format json` (SPEC.md sections 1 and 5).
    It reads a fleet CSV, sums TPP per country and prints one JSON object: `compliant`,
    `verdict` (`not_compliant` when a rule is broken, else `no_compute` when nothing is counted,
    else `compliant`; `compliant` is true only for the last), `total_tpp`, `tier1_share`, `home_share`, `countries`, `violations`, `headroom` and
    `new_tier2_country_headroom_tpp`. Shares are percentages (0..100) as floats, computed
    exactly with fractions.Fraction and rounded once when converted to float.

Why it is separate from the Rust code
    It deliberately shares no code or data with the Rust implementation and uses only the Python
    standard library. Rule checks are exact rational comparisons; headroom is found by a binary
    search over "do all rules still pass if x TPP are added to this country?", then checked
    against the closed form of SPEC.md section 5 (an assertion), so the fixtures test both the
    product's arithmetic and the formula it was told to use. Remediation is found the same way:
    for each broken rule, the least TPP removed from or added to a place after which that rule
    holds (binary search, then checked against its closed form), and the least TPP added at home
    after emptying Tier 3 for which every rule holds. The policy (tiers, thresholds, home
    country, the handful of catalogue TPP values the fixtures use) is written out below on
    purpose, not loaded from the product's policy or catalogue files.

How to run it
    python3 tests/reference/plan_reference.py FLEET.csv
        print the expected plan JSON for one fleet file.
    python3 tests/reference/plan_reference.py --generate tests/fixtures/plan
        (re)write NAME.expected.json next to every NAME.csv in that folder.

Input format (SPEC.md section 5, "Planning")
    Lines starting with # and blank lines are skipped. A header line naming the columns `country`, `count` and exactly one of `accelerator`
    (catalogue id) or `tpp` (TPP per unit), optionally `site`, in any order; RFC 4180 quoting.
    Country codes are ISO 3166-1 alpha-2, case-insensitive (normalised to upper case). Rows for
    the same country add up. A bad line is reported as `LINE: reason` on stderr with exit code 2
    and nothing is evaluated.
"""

import csv
import json
import sys
from fractions import Fraction
from pathlib import Path

# ---------------------------------------------------------------------------------------------
# Policy: 2025 UVEU, US headquarters (SPEC.md sections 1 and 2).
# ---------------------------------------------------------------------------------------------

HOME = "US"
TIER1_MIN = Fraction(75, 100)
HOME_MIN = Fraction(50, 100)
TIER2_COUNTRY_MAX = Fraction(7, 100)

TIER1 = frozenset(
    "US AU BE CA DK FI FR DE IE IT JP NL NZ NO KR ES SE TW GB".split()
)
TIER3 = frozenset(
    "AF BY MM KH CF CN CD CU CY ER HT IR IQ KP LB LY NI RU SO SS SD SY VE ZW MO".split()
)

# ISO 3166-1 alpha-2, the 249 officially assigned codes.
ISO_ALPHA2 = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM
    DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS
    GT GU GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN
    KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ
    MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV
    SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI
    VN VU WF WS YE YT ZA ZM ZW
    """.split()
)
assert len(ISO_ALPHA2) == 249
assert TIER1 <= ISO_ALPHA2 and TIER3 <= ISO_ALPHA2 and not (TIER1 & TIER3)

# Only the catalogue ids the fixtures use, with TPP per device (SPEC.md section 2).
CATALOGUE_TPP = {
    "H100-SXM5-80GB": 15840,
    "H200-SXM-141GB": 15840,
    "H100-PCIE-80GB": 12224,
    "A100-SXM4-80GB": 4989,
    "L40S": 5872,
    "B200": 37248,
    "GB200": 40200,
    "MI300X": 20919,
}

RULE_TIER1 = "tier1_min_share"
RULE_HOME = "home_min_share"
RULE_TIER2 = "tier2_country_max_share"
RULE_TIER3 = "tier3_prohibited"


def tier(country):
    if country in TIER1:
        return 1
    if country in TIER3:
        return 3
    return 2


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


class FleetError(Exception):
    pass


def parse_uint(text):
    text = text.strip()
    if not text.isdigit() or not text.isascii():
        raise ValueError(text)
    return int(text)


def read_fleet(path):
    """Return {COUNTRY: tpp} for a fleet CSV, or raise FleetError with every bad line."""
    errors = []
    fleet = {}
    with open(path, newline="", encoding="utf-8") as f:
        # Lines starting with # are comments and blank lines are skipped, as in the product;
        # they are blanked rather than dropped so that line numbers stay true.
        lines = ["\n" if l.lstrip().startswith("#") else l for l in f]
        reader = csv.reader(l for l in lines if l.strip())
        header = next(reader, None)
        if header is None:
            raise FleetError(["1: empty file, expected a header line"])
        columns = [h.strip().lower() for h in header]
        for required in ("country", "count"):
            if required not in columns:
                raise FleetError([f"1: header has no `{required}` column"])
        has_acc, has_tpp = "accelerator" in columns, "tpp" in columns
        if has_acc == has_tpp:
            raise FleetError(["1: header needs exactly one of `accelerator` or `tpp`"])
        index = {name: i for i, name in enumerate(columns)}
        for row in reader:
            line = reader.line_num
            if len(row) != len(columns):
                errors.append(f"{line}: {len(row)} fields, header has {len(columns)}")
                continue
            country = row[index["country"]].strip().upper()
            if country not in ISO_ALPHA2:
                errors.append(f"{line}: unknown country code {row[index['country']]!r}")
                continue
            try:
                count = parse_uint(row[index["count"]])
            except ValueError:
                errors.append(f"{line}: count is not a non-negative integer")
                continue
            if has_acc:
                acc = row[index["accelerator"]].strip()
                if acc not in CATALOGUE_TPP:
                    errors.append(f"{line}: unknown accelerator {acc!r}")
                    continue
                per_unit = CATALOGUE_TPP[acc]
            else:
                try:
                    per_unit = parse_uint(row[index["tpp"]])
                except ValueError:
                    errors.append(f"{line}: tpp is not a non-negative integer")
                    continue
                if per_unit == 0:
                    errors.append(f"{line}: tpp per unit must be positive")
                    continue
            fleet[country] = fleet.get(country, 0) + count * per_unit
    if errors:
        raise FleetError(errors)
    return fleet


# ---------------------------------------------------------------------------------------------
# Evaluation, exact
# ---------------------------------------------------------------------------------------------


def share(part, total):
    """Exact fraction of the total (0 for an empty fleet)."""
    return Fraction(part, total) if total else Fraction(0)


def violations(fleet):
    """Every broken rule as (rule, country or None). Rules compare exact fractions.

    With total 0 every share is 0 and each minimum reads "0 >= limit * 0", which holds, so an
    empty fleet has no violation.
    """
    total = sum(fleet.values())
    tier1_sum = sum(t for c, t in fleet.items() if tier(c) == 1)
    home_sum = fleet.get(HOME, 0)
    found = []
    if Fraction(tier1_sum) < TIER1_MIN * total:
        found.append((RULE_TIER1, None))
    if Fraction(home_sum) < HOME_MIN * total:
        found.append((RULE_HOME, HOME))
    for country, tpp in fleet.items():
        if tier(country) == 2 and Fraction(tpp) > TIER2_COUNTRY_MAX * total:
            found.append((RULE_TIER2, country))
        if tier(country) == 3 and tpp > 0:
            found.append((RULE_TIER3, country))
    found.sort(key=lambda v: (v[0], v[1] or ""))
    return found


def passes_with(fleet, country, extra):
    trial = dict(fleet)
    trial[country] = trial.get(country, 0) + extra
    return not violations(trial)


def headroom_search(fleet, country):
    """Largest integer x >= 0 such that adding x TPP to `country` breaks no rule; 0 if none.

    The passing x form an interval starting at 0 (each rule is an upper bound on x), so a
    binary search is exact. x = T + 1 always fails: the country would hold more than half the
    fleet, far above 7 %.
    """
    if not passes_with(fleet, country, 0):
        return 0
    lo, hi = 0, sum(fleet.values()) + 1  # lo passes, hi fails
    assert not passes_with(fleet, country, hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if passes_with(fleet, country, mid):
            lo = mid
        else:
            hi = mid
    return lo


def headroom_closed_form(fleet, country):
    """SPEC.md section 5: min(floor((7T-100c)/93), floor((4 T1 - 3T)/3), 2H - T), 0 on failure."""
    if violations(fleet):
        return 0
    total = sum(fleet.values())
    tier1_sum = sum(t for c, t in fleet.items() if tier(c) == 1)
    home_sum = fleet.get(HOME, 0)
    c = fleet.get(country, 0)
    x = min((7 * total - 100 * c) // 93, (4 * tier1_sum - 3 * total) // 3, 2 * home_sum - total)
    return max(x, 0)


def headroom(fleet, country):
    searched = headroom_search(fleet, country)
    closed = headroom_closed_form(fleet, country)
    assert searched == closed, (country, searched, closed)
    return searched


# Where "any Tier-1 country" puts an addition when searching: Tier 1, not the home country.
ANY_TIER1 = "JP"
# Whole units of remediation, rounded up, are of the default unit (H100-SXM5-80GB).
UNIT_TPP = CATALOGUE_TPP["H100-SXM5-80GB"]


def changed(fleet, action, place, amount):
    trial = dict(fleet)
    country = ANY_TIER1 if place == "tier1" else place
    if action == "add":
        trial[country] = trial.get(country, 0) + amount
    else:
        trial[country] = trial[country] - amount
    return trial


def least(restores, hi):
    """Least integer x in [0, hi] with restores(x), for a predicate that stays true from some x on."""
    assert restores(hi), hi
    lo = -1  # restores(lo) is false (or lo is below the range)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if restores(mid):
            hi = mid
        else:
            lo = mid
    return hi


def ceil_div(a, b):
    return -(-a // b)


def remedies_of(fleet, rule, country):
    """(action, place, tpp) for each least change restoring (rule, country) alone."""
    total = sum(fleet.values())
    tier1_sum = sum(t for c, t in fleet.items() if tier(c) == 1)
    broken = lambda trial: (rule, country) in violations(trial)
    search = lambda action, place, hi: least(
        lambda x: not broken(changed(fleet, action, place, x)), hi
    )
    found = []
    if rule == RULE_TIER1:
        y = search("add", "tier1", 20 * total + 1)
        assert y == 3 * total - 4 * tier1_sum, (y, "3T - 4 T1")
        found.append(("add", "tier1", y))
    elif rule == RULE_HOME:
        y = search("add", HOME, 20 * total + 1)
        assert y == total - 2 * fleet.get(HOME, 0), (y, "T - 2H")
        found.append(("add", HOME, y))
    elif rule == RULE_TIER2:
        c = fleet[country]
        x = search("remove", country, c)
        assert x == ceil_div(100 * c - 7 * total, 93), (x, "(100c - 7T)/93")
        found.append(("remove", country, x))
        y = search("add", "tier1", 20 * total + 1)
        assert y == ceil_div(100 * c - 7 * total, 7), (y, "(100c - 7T)/7")
        found.append(("add", "tier1", y))
    elif rule == RULE_TIER3:
        x = search("remove", country, fleet[country])
        assert x == fleet[country]
        found.append(("remove", country, x))
    return found


def all_at_once(fleet, found):
    """Empty every Tier-3 country that breaks its rule, then the least TPP added at home for
    which every rule holds and something is counted."""
    if not found:
        return None
    plan = [("remove", c, fleet[c]) for rule, c in found if rule == RULE_TIER3]
    emptied = dict(fleet)
    for _, country, tpp in plan:
        emptied = changed(emptied, "remove", country, tpp)
    compliant = lambda trial: not violations(trial) and sum(trial.values()) > 0
    y = least(lambda y: compliant(changed(emptied, "add", HOME, y)), 20 * sum(fleet.values()) + 1)
    if y > 0:
        plan.append(("add", HOME, y))
    return plan


def change_json(action, place, tpp):
    return {"action": action, "place": place, "tpp": tpp, "units": ceil_div(tpp, UNIT_TPP)}


def percent(part, total):
    return float(100 * share(part, total))


def unused_tier2_country(fleet):
    for code in sorted(ISO_ALPHA2):
        if tier(code) == 2 and code not in fleet:
            return code
    raise AssertionError("every Tier-2 country is in the fleet")


def evaluate(fleet):
    total = sum(fleet.values())
    tier1_sum = sum(t for c, t in fleet.items() if tier(c) == 1)
    found = violations(fleet)
    countries = [
        {"country": c, "tier": tier(c), "tpp": fleet[c], "share": percent(fleet[c], total)}
        for c in sorted(fleet)
    ]
    if found:
        verdict = "not_compliant"
    elif total == 0:
        # SPEC section 5: zero counted TPP leaves every share undefined; never compliant.
        verdict = "no_compute"
    else:
        verdict = "compliant"
    return {
        "compliant": verdict == "compliant",
        "verdict": verdict,
        "total_tpp": total,
        "tier1_share": percent(tier1_sum, total),
        "home_share": percent(fleet.get(HOME, 0), total),
        "countries": countries,
        "violations": [
            {"rule": rule} if country is None else {"rule": rule, "country": country}
            for rule, country in found
        ],
        "headroom": [
            {"country": c, "tpp": headroom(fleet, c)} for c in sorted(fleet) if tier(c) == 2
        ],
        "new_tier2_country_headroom_tpp": headroom(fleet, unused_tier2_country(fleet)),
        "remediation": [
            dict({"rule": rule} if country is None else {"rule": rule, "country": country},
                 **change_json(*change))
            for rule, country in found
            for change in remedies_of(fleet, rule, country)
        ],
        "remediation_all_at_once": (
            None if not found else [change_json(*change) for change in all_at_once(fleet, found)]
        ),
    }


def render(result):
    return json.dumps(result, indent=2) + "\n"


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def main(argv):
    if len(argv) == 3 and argv[1] == "--generate":
        folder = Path(argv[2])
        fleets = sorted(folder.glob("*.csv"))
        if not fleets:
            print(f"no *.csv in {folder}", file=sys.stderr)
            return 2
        for path in fleets:
            out = path.with_name(path.stem + ".expected.json")
            out.write_text(render(evaluate(read_fleet(path))), encoding="utf-8")
            print(f"wrote {out}")
        return 0
    if len(argv) == 2 and not argv[1].startswith("-"):
        try:
            fleet = read_fleet(argv[1])
        except FleetError as err:
            for line in err.args[0]:
                print(line, file=sys.stderr)
            return 2
        sys.stdout.write(render(evaluate(fleet)))
        return 0
    print("usage: plan_reference.py FLEET.csv | --generate DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
