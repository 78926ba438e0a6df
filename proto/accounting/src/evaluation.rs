//! Exact evaluation of a compute distribution against a policy (SPEC section 5): integer TPP,
//! cross-multiplied comparisons, inclusive thresholds, every violation listed, headroom, and
//! the smallest changes that restore a broken rule.

use std::collections::BTreeMap;
use std::fmt;

use crate::{Accelerator, CountryCode, Policy};

/// A country's tier under a policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// The US and close allies.
    One,
    /// Every country in neither list.
    Two,
    /// Arms-embargoed countries: no compute allowed.
    Three,
}

impl Tier {
    /// 1, 2 or 3.
    pub fn number(self) -> u8 {
        match self {
            Tier::One => 1,
            Tier::Two => 2,
            Tier::Three => 3,
        }
    }
}

/// The rules a distribution is checked against; names are the JSON contract's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// Tier-1 share at least the minimum.
    Tier1MinShare,
    /// Headquarters-country share at least the minimum.
    HomeMinShare,
    /// Every single Tier-2 country at most the maximum.
    Tier2CountryMaxShare,
    /// No compute in Tier 3.
    Tier3Prohibited,
}

impl Rule {
    /// The rule's name in JSON and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::Tier1MinShare => "tier1_min_share",
            Rule::HomeMinShare => "home_min_share",
            Rule::Tier2CountryMaxShare => "tier2_country_max_share",
            Rule::Tier3Prohibited => "tier3_prohibited",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The verdict on a distribution (SPEC section 5). Decided in one place,
/// [`Evaluation::verdict`], and read from there by every caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Counted compute, and every rule holds.
    Compliant,
    /// At least one rule is broken.
    NotCompliant,
    /// Zero counted TPP: no share is defined, so no rule can be evaluated, and the distribution
    /// is never reported as compliant.
    NoCompute,
}

impl Verdict {
    /// Every verdict, in the order above.
    pub const ALL: [Verdict; 3] = [
        Verdict::Compliant,
        Verdict::NotCompliant,
        Verdict::NoCompute,
    ];

    /// The verdict's name in JSON, metrics and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Compliant => "compliant",
            Verdict::NotCompliant => "not_compliant",
            Verdict::NoCompute => "no_compute",
        }
    }

    /// The verdict for people, upper case: `COMPLIANT`, `NOT COMPLIANT`, `NO COMPUTE`.
    pub fn headline(self) -> &'static str {
        match self {
            Verdict::Compliant => "COMPLIANT",
            Verdict::NotCompliant => "NOT COMPLIANT",
            Verdict::NoCompute => "NO COMPUTE",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One broken rule; `country` is set for every rule but the Tier-1 minimum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Violation {
    /// Which rule.
    pub rule: Rule,
    /// The country it concerns.
    pub country: Option<CountryCode>,
}

/// Counted TPP per country. Kept up to date incrementally: each change costs one map update.
///
/// A country is listed while something added to it is still there (a host with 0 TPP lists its
/// country with 0), so a distribution kept up to date with `replace` lists exactly what one
/// built afresh with `add` lists. Two distributions are equal when they list the same
/// countries with the same TPP.
#[derive(Debug, Clone, Default)]
pub struct Distribution {
    by_country: BTreeMap<CountryCode, u64>,
    /// How many contributions each listed country holds.
    members: BTreeMap<CountryCode, u64>,
    total: u64,
}

impl PartialEq for Distribution {
    fn eq(&self, other: &Self) -> bool {
        self.by_country == other.by_country && self.total == other.total
    }
}

impl Eq for Distribution {}

/// TPP beyond what 64 bits hold: a fleet this large is an input error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("total TPP does not fit in 64 bits")]
pub struct TppOverflow;

impl Distribution {
    /// An empty distribution.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `tpp` to `country`. A country added with 0 TPP is listed with 0.
    pub fn add(&mut self, country: CountryCode, tpp: u64) -> Result<(), TppOverflow> {
        let total = self.total.checked_add(tpp).ok_or(TppOverflow)?;
        let entry = self.by_country.entry(country).or_insert(0);
        *entry = entry.checked_add(tpp).ok_or(TppOverflow)?;
        *self.members.entry(country).or_insert(0) += 1;
        self.total = total;
        Ok(())
    }

    /// Replaces a host's contribution: removes `old` and adds `new` in one step.
    pub fn replace(
        &mut self,
        old: Option<(CountryCode, u64)>,
        new: Option<(CountryCode, u64)>,
    ) -> Result<(), TppOverflow> {
        if let Some((country, tpp)) = old {
            let entry = self.by_country.entry(country).or_insert(0);
            let removed = tpp.min(*entry);
            *entry -= removed;
            self.total -= removed;
            let members = self.members.entry(country).or_insert(0);
            *members = members.saturating_sub(1);
            if *members == 0 {
                self.members.remove(&country);
                self.by_country.remove(&country);
            }
        }
        match new {
            Some((country, tpp)) => self.add(country, tpp),
            None => Ok(()),
        }
    }

    /// Total counted TPP.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// TPP of one country (0 when absent).
    pub fn of(&self, country: CountryCode) -> u64 {
        self.by_country.get(&country).copied().unwrap_or(0)
    }

    /// Every listed country and its TPP, in code order.
    pub fn countries(&self) -> impl Iterator<Item = (CountryCode, u64)> + '_ {
        self.by_country
            .iter()
            .map(|(country, tpp)| (*country, *tpp))
    }
}

/// One country's line in an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CountryShare {
    /// The country.
    pub country: CountryCode,
    /// Its tier.
    pub tier: Tier,
    /// Its counted TPP.
    pub tpp: u64,
    /// For Tier-2 countries, the TPP that can still be added there.
    pub headroom: Option<u64>,
}

/// The verdict on a distribution, with everything needed to explain it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// Total counted TPP.
    pub total_tpp: u64,
    /// TPP in Tier-1 countries that counts toward the Tier-1 minimum: all of it, or, when the
    /// policy requires location verification for Tier 1, the location-verified part.
    pub tier1_tpp: u64,
    /// TPP declared in Tier-1 countries that does not count toward the minimums because its
    /// hosts are not location-verified there (0 unless the policy requires it).
    pub tier1_unlocated_tpp: u64,
    /// The home rule's country and its TPP counting toward the home minimum (located only,
    /// when the policy requires location verification), when the rule applies.
    pub home: Option<(CountryCode, u64)>,
    /// Every country in the distribution, in code order.
    pub countries: Vec<CountryShare>,
    /// Every broken rule, ordered by rule then country.
    pub violations: Vec<Violation>,
    /// TPP that could be added to a Tier-2 country not in the distribution.
    pub new_tier2_country_headroom: u64,
}

impl Evaluation {
    /// The verdict: not compliant when a rule is broken; otherwise no compute when nothing is
    /// counted (an empty total breaks no rule only because every share of it is undefined);
    /// otherwise compliant.
    pub fn verdict(&self) -> Verdict {
        if !self.violations.is_empty() {
            Verdict::NotCompliant
        } else if self.total_tpp == 0 {
            Verdict::NoCompute
        } else {
            Verdict::Compliant
        }
    }

    /// True only for [`Verdict::Compliant`]: counted compute and no rule broken.
    pub fn compliant(&self) -> bool {
        self.verdict() == Verdict::Compliant
    }
}

/// Evaluates `distribution` against `policy`, every host taken at its declared place: a plan
/// or a fleet file, where nothing is measured. The collector's books, its reports and the
/// offline verifier evaluate with [`evaluate_located`]. Cost: one pass over the countries.
pub fn evaluate(policy: &Policy, distribution: &Distribution) -> Evaluation {
    assess(policy, distribution, None)
}

/// Evaluates the books against `policy`: `declared` is the counted TPP per country of the
/// hosts' enrolled sites, `located` the part of it whose hosts are location-verified in that
/// country (docs/location.md). Under a policy that requires location verification for Tier 1
/// (`[location] require_for_tier1`), a Tier-1 country's compute counts toward the Tier-1 and
/// home minimums only as far as it is located there; the rest still counts in the total, so
/// unverified compute dilutes the minimums instead of meeting them. The Tier-2 maximum and the
/// Tier-3 prohibition read the declared distribution either way: a claim to be outside Tier 1
/// is never discounted. Without the requirement this is [`evaluate`].
pub fn evaluate_located(
    policy: &Policy,
    declared: &Distribution,
    located: &Distribution,
) -> Evaluation {
    assess(
        policy,
        declared,
        policy.location.required_for_tier1.then_some(located),
    )
}

/// The one evaluation: with `located`, the Tier-1 and home minimums count only located TPP.
fn assess(
    policy: &Policy,
    distribution: &Distribution,
    located: Option<&Distribution>,
) -> Evaluation {
    let total = distribution.total();
    // What of a country's declared TPP counts toward the minimums.
    let credited = |country: CountryCode, tpp: u64| match located {
        Some(located) => located.of(country).min(tpp),
        None => tpp,
    };
    let (tier1_tpp, tier1_declared) = distribution
        .countries()
        .filter(|(country, _)| policy.tier(*country) == Tier::One)
        .fold(
            (0u64, 0u64),
            |(credited_sum, declared_sum), (country, tpp)| {
                (credited_sum + credited(country, tpp), declared_sum + tpp)
            },
        );
    let home = policy
        .home_rule()
        .map(|(country, _)| (country, credited(country, distribution.of(country))));

    let mut violations = Vec::new();
    if !policy.tier1_min_share.is_reached_by(tier1_tpp, total) {
        violations.push(Violation {
            rule: Rule::Tier1MinShare,
            country: None,
        });
    }
    if let (Some((country, tpp)), Some((_, share))) = (home, policy.home_rule())
        && !share.is_reached_by(tpp, total)
    {
        violations.push(Violation {
            rule: Rule::HomeMinShare,
            country: Some(country),
        });
    }
    for (country, tpp) in distribution.countries() {
        let rule = match policy.tier(country) {
            Tier::Two
                if !policy
                    .tier2_country_max_share
                    .is_not_exceeded_by(tpp, total) =>
            {
                Rule::Tier2CountryMaxShare
            }
            Tier::Three if policy.tier3_prohibited && tpp > 0 => Rule::Tier3Prohibited,
            _ => continue,
        };
        violations.push(Violation {
            rule,
            country: Some(country),
        });
    }
    violations.sort();

    let failing = !violations.is_empty();
    let headroom = |tier2_tpp: u64| {
        if failing {
            0
        } else {
            tier2_headroom(policy, total, tier1_tpp, home, tier2_tpp)
        }
    };
    let countries = distribution
        .countries()
        .map(|(country, tpp)| {
            let tier = policy.tier(country);
            CountryShare {
                country,
                tier,
                tpp,
                headroom: (tier == Tier::Two).then(|| headroom(tpp)),
            }
        })
        .collect();
    Evaluation {
        total_tpp: total,
        tier1_tpp,
        tier1_unlocated_tpp: tier1_declared - tier1_tpp,
        home,
        countries,
        violations,
        new_tier2_country_headroom: headroom(0),
    }
}

/// Largest TPP that can be added to a Tier-2 country holding `country_tpp` with every rule
/// still true, for a distribution that passes today: the minimum of the room under the
/// country's own maximum and the room each minimum share leaves (for the 2025 numbers,
/// min(⌊(7T − 100c)/93⌋, ⌊(4·T1 − 3T)/3⌋, 2H − T)). `u64::MAX` when nothing limits it.
fn tier2_headroom(
    policy: &Policy,
    total: u64,
    tier1_tpp: u64,
    home: Option<(CountryCode, u64)>,
    country_tpp: u64,
) -> u64 {
    let limits = [
        policy
            .tier2_country_max_share
            .max_growth_below(country_tpp, total),
        policy.tier1_min_share.max_dilution_above(tier1_tpp, total),
        // Adding to the home country itself can only raise its share; a home country is Tier 1
        // under every shipped policy, so this term always applies there.
        home.zip(policy.home_rule())
            .and_then(|((_, home_tpp), (_, share))| share.max_dilution_above(home_tpp, total)),
    ];
    limits.into_iter().flatten().min().unwrap_or(u64::MAX)
}

/// Whether a change takes compute away or adds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Take TPP away (decommission, move out of the evaluated fleet).
    Remove,
    /// Deploy more TPP.
    Add,
}

impl Action {
    /// `remove` or `add`, as in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Remove => "remove",
            Action::Add => "add",
        }
    }
}

/// Where a change is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Place {
    /// In this country.
    Country(CountryCode),
    /// In any Tier-1 country, or spread over several.
    AnyTier1,
}

/// One change of the fleet: `tpp` added or removed at `place`, and the same in whole units of
/// the accelerator [`remediation`] was asked for, rounded up (the fewest units whose TPP is at
/// least `tpp`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// Remove or add.
    pub action: Action,
    /// Where.
    pub place: Place,
    /// Exact TPP, always greater than zero.
    pub tpp: u64,
    /// Whole units of the chosen accelerator covering `tpp`.
    pub units: u64,
}

/// One way to restore one broken rule, everything else unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Remedy {
    /// The broken rule it restores.
    pub violation: Violation,
    /// The change.
    pub change: Change,
}

/// What restores compliance: see [`remediation`] for what "smallest" means in each case.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Remediation {
    /// For each violation, in the evaluation's order, each way to restore it alone.
    pub remedies: Vec<Remedy>,
    /// One plan that restores every rule at once, when the policy allows one: empty every
    /// Tier-3 country that holds compute, then add TPP in one place. `None` when the fleet
    /// breaks no rule, or when no single place to add exists (see [`remediation`]).
    pub all_at_once: Option<Vec<Change>>,
}

/// The smallest changes that restore compliance to the fleet `evaluation` was made of, in exact
/// TPP (integers, cross-multiplied, never floats) and in whole units of `unit`. Empty when
/// nothing is broken. A fleet with no counted compute breaks no rule, so it has no remedy
/// either (any compute added in Tier 1 makes it compliant).
///
/// For each violation, every remedy below is the least whole number of TPP for which that
/// rule holds once the change is made and everything else stays as it is; one TPP less and
/// the rule is still broken. With the policy's percentages as fractions `t1` (Tier-1 minimum),
/// `h` (home minimum) and `m` (Tier-2 maximum), `T` the total, `T1` the Tier-1 sum, `H` the
/// home country's TPP and `c` a country's TPP:
///
/// - `tier1_min_share`: **add in Tier 1** the least `y` with `(T1 + y) / (T + y) ≥ t1`, that
///   is `⌈(t1·T − T1) / (1 − t1)⌉` (for 75 %: `3T − 4·T1`). None at 100 %, where only
///   removing compute outside Tier 1 helps, and none when the policy lists no Tier-1 country
///   (as for the other additions in Tier 1 below).
/// - `home_min_share`: **add in the home country** the least `y` with
///   `(H + y) / (T + y) ≥ h`: `⌈(h·T − H) / (1 − h)⌉` (for 50 %: `T − 2H`). None at 100 %.
/// - `tier2_country_max_share` of country `c`: **remove from `c`** the least `x` with
///   `(c − x) / (T − x) ≤ m`: `⌈(c − m·T) / (1 − m)⌉` (for 7 %: `⌈(100c − 7T) / 93⌉`), never
///   more than `c`; **or add in Tier 1** the least `y` with `c / (T + y) ≤ m`:
///   `⌈(c − m·T) / m⌉` (for 7 %: `⌈(100c − 7T) / 7⌉`), none at 0 %. Removing from `c` also
///   shrinks the total, which raises every other Tier-2 country's share: `all_at_once` is the
///   plan that accounts for every rule together.
/// - `tier3_prohibited` of country `c`: **remove from `c`** all of its TPP (any compute there
///   breaks the rule, so nothing less will do).
///
/// `all_at_once`: every Tier-3 country that breaks the rule emptied, then the least `y` added
/// in one place for which *every* rule holds (and something is counted): the home country when
/// the home rule applies and the home country is in Tier 1, any Tier-1 country when there is
/// no home rule; `None` when the home country is not in Tier 1 (no single place raises every
/// minimum), the policy lists no Tier-1 country, or a minimum is 100 % or the Tier-2 maximum
/// 0 % with compute there. Adding at such
/// a place only raises the Tier-1 and home shares and only lowers every other share, so each
/// rule holds from its own least `y` on, and `y` is the largest of them: the least for which
/// they all hold. `None` too when the fleet breaks no rule.
///
/// A change's `units` are the fewest whole units of `unit` whose TPP is at least the change's
/// TPP ([`Accelerator::units_covering`]); headroom is counted down instead
/// ([`Accelerator::units_within`]).
pub fn remediation(policy: &Policy, evaluation: &Evaluation, unit: &Accelerator) -> Remediation {
    if evaluation.violations.is_empty() {
        return Remediation::default();
    }
    let total = evaluation.total_tpp;
    let tpp_of = |country: Option<CountryCode>| {
        evaluation
            .countries
            .iter()
            .find(|line| Some(line.country) == country)
            .map_or(0, |line| line.tpp)
    };
    let change = |action: Action, place: Place, tpp: u64| Change {
        action,
        place,
        tpp,
        units: unit.units_covering(tpp),
    };
    // A policy may list no Tier-1 country at all; then nothing can be added there.
    let tier1_exists = policy.tier1().next().is_some();
    let mut remedies = Vec::new();
    for violation in &evaluation.violations {
        let mut offer = |change: Change| {
            remedies.push(Remedy {
                violation: *violation,
                change,
            });
        };
        match violation.rule {
            Rule::Tier1MinShare => {
                if let Some(y) = policy
                    .tier1_min_share
                    .min_addition_to_reach(evaluation.tier1_tpp, total)
                    .filter(|_| tier1_exists)
                {
                    offer(change(Action::Add, Place::AnyTier1, y));
                }
            }
            Rule::HomeMinShare => {
                if let (Some((home, share)), Some(country)) =
                    (policy.home_rule(), violation.country)
                    && let Some(y) = share.min_addition_to_reach(
                        evaluation
                            .home
                            .filter(|(c, _)| *c == home)
                            .map_or(0, |(_, tpp)| tpp),
                        total,
                    )
                {
                    offer(change(Action::Add, Place::Country(country), y));
                }
            }
            Rule::Tier2CountryMaxShare => {
                let c = tpp_of(violation.country);
                let max = policy.tier2_country_max_share;
                if let Some(country) = violation.country {
                    offer(change(
                        Action::Remove,
                        Place::Country(country),
                        max.min_removal_to_keep(c, total),
                    ));
                }
                if let Some(y) = max.min_dilution_to_keep(c, total).filter(|_| tier1_exists) {
                    offer(change(Action::Add, Place::AnyTier1, y));
                }
            }
            Rule::Tier3Prohibited => {
                if let Some(country) = violation.country {
                    offer(change(
                        Action::Remove,
                        Place::Country(country),
                        tpp_of(Some(country)),
                    ));
                }
            }
        }
    }
    Remediation {
        remedies,
        all_at_once: all_at_once(policy, evaluation, &change),
    }
}

/// The `all_at_once` plan of [`remediation`].
fn all_at_once(
    policy: &Policy,
    evaluation: &Evaluation,
    change: &impl Fn(Action, Place, u64) -> Change,
) -> Option<Vec<Change>> {
    let mut plan: Vec<Change> = evaluation
        .violations
        .iter()
        .filter(|violation| violation.rule == Rule::Tier3Prohibited)
        .filter_map(|violation| violation.country)
        .filter_map(|country| {
            let tpp = evaluation
                .countries
                .iter()
                .find(|line| line.country == country)?
                .tpp;
            Some(change(Action::Remove, Place::Country(country), tpp))
        })
        .collect();
    let removed: u64 = plan.iter().map(|step| step.tpp).sum();
    // What is left once Tier 3 is emptied; Tier 1 and home lose nothing.
    let total = evaluation.total_tpp - removed;
    let (place, home_needs) = match policy.home_rule() {
        Some((home, share)) if policy.tier(home) == Tier::One => {
            let home_tpp = evaluation.home.map_or(0, |(_, tpp)| tpp);
            (
                Place::Country(home),
                share.min_addition_to_reach(home_tpp, total)?,
            )
        }
        Some(_) => return None,
        None if policy.tier1().next().is_none() => return None,
        None => (Place::AnyTier1, 0),
    };
    let mut needed = home_needs.max(
        policy
            .tier1_min_share
            .min_addition_to_reach(evaluation.tier1_tpp, total)?,
    );
    for line in &evaluation.countries {
        if line.tier == Tier::Two {
            needed = needed.max(
                policy
                    .tier2_country_max_share
                    .min_dilution_to_keep(line.tpp, total)?,
            );
        }
    }
    // Nothing counted is never compliant: one TPP at least.
    if total == 0 {
        needed = needed.max(1);
    }
    if needed > 0 {
        plan.push(change(Action::Add, place, needed));
    }
    Some(plan)
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod remediation_tests;
