//! Building a report: replay every host state change, evaluate the distribution at each
//! instant of the period (the month, or its part before the as-of instant), and collect days,
//! series, violation intervals and verdict states on the way.
//!
//! Host changes and, when the policy requires location verification for Tier 1, hosts'
//! location changes are walked together. Changes before the month give the state at its
//! start. Each later instant applies all of
//! its changes first, then evaluates once, so a report costs one evaluation (one pass over the
//! countries) per distinct instant: O(changes × countries), in memory bounded by the hosts,
//! the countries and the series caps. Every instant's state is decided in one place,
//! [`Current::measure`]: `no_evidence` before the fleet's first change, otherwise the
//! evaluation's own verdict.

use std::collections::{BTreeMap, HashMap, HashSet};

use proto_accounting::{
    CountryCode, Distribution, Evaluation, Policy, Rule, Tier, Violation, evaluate_located,
};

use crate::error::ReportError;
use crate::input::{
    ChangeKind, HostChange, LocationChange, LocationInput, LocationVerdict, ReportInput, StaleSpan,
};
use crate::month::{DAY_MS, format_date};
use crate::report::{
    CountryStanding, Day, DayCountry, EndOfMonth, FORMAT, HomeLimit, InconsistentHost,
    InventoryChange, Limits, LocationSection, PeakShare, RejectionCount, Report, RuleBreach,
    Series, Span, State, Verdict, ViolationInterval,
};
use crate::series::SeriesBuilder;
use crate::share::{Share, limit_text};

/// Computes the month's report up to `input.as_of_ms`. Fails on input that cannot describe a
/// real month: an as-of instant outside the month (or at its very start), changes out of order
/// or not before the as-of instant, TPP beyond 64 bits, a silence ending before it starts, a
/// gap or conflict outside the period, a host given two location verdicts.
pub fn build(input: &ReportInput) -> Result<Report, ReportError> {
    input.month.check()?;
    let (start_ms, end_ms) = (input.month.start_ms(), input.month.end_ms());
    let as_of_ms = input.as_of_ms;
    if as_of_ms <= start_ms || as_of_ms > end_ms {
        return Err(ReportError::AsOfOutsideMonth {
            as_of_ms,
            start_ms,
            end_ms,
        });
    }
    check_changes(&input.changes, as_of_ms)?;
    let stale = stale_in_period(&input.stale, start_ms, as_of_ms)?;
    let gaps = events_in_period("gaps", &input.gaps, start_ms, as_of_ms, |gap| {
        (gap.at_ms, &gap.host_id)
    })?;
    let conflicts = events_in_period("conflicts", &input.conflicts, start_ms, as_of_ms, |c| {
        (c.at_ms, &c.host_id)
    })?;
    let rejections = rejections_by_reason(&input.rejections)?;

    let changes = &input.changes;
    let located_changes = input
        .location
        .as_ref()
        .map_or(&[][..], |location| &location.changes[..]);
    check_location_changes(located_changes, as_of_ms)?;
    let mut fleet = Fleet::default();
    let mut timeline = Timeline {
        changes,
        located: located_changes,
        next: 0,
        next_located: 0,
    };
    while let Some(at_ms) = timeline.next_ms().filter(|at_ms| *at_ms < start_ms) {
        timeline.apply(at_ms, &mut fleet, false)?;
    }
    fleet.mark_start();
    if timeline.next_ms() == Some(start_ms) {
        timeline.apply(start_ms, &mut fleet, true)?;
    }
    let mut walk = Walk::start(input, &fleet);
    while let Some(at_ms) = timeline.next_ms() {
        walk.close_days_before(at_ms, &fleet);
        timeline.apply(at_ms, &mut fleet, true)?;
        walk.observe(at_ms, &fleet);
    }
    walk.close_days_before(as_of_ms, &fleet);

    let limits = limits(&input.policy);
    let (location, verified) = match &input.location {
        Some(location) => {
            let (section, verified) = located(location, &fleet)?;
            (Some(section), verified)
        }
        None => (None, Distribution::new()),
    };
    let end_of_month = end_of_month(&walk.current, &fleet, &verified, &limits);
    let at_end = walk.current.state;
    let walked = walk.finish();
    let violations = walked.violations;
    Ok(Report {
        format: FORMAT.to_owned(),
        month: input.month,
        period_start_ms: start_ms,
        period_end_ms: end_ms,
        as_of_ms,
        partial: as_of_ms < end_ms,
        policy_id: input.policy_id.clone(),
        policy_digest: input.policy_digest.clone(),
        catalogue_digest: input.catalogue_digest.clone(),
        collector: input.collector.clone(),
        organisation: input.organisation.clone(),
        limits,
        verdict: Verdict {
            state: walked.state,
            evidence_from_ms: walked.evidence_from_ms,
            at_end,
            violations_count: u64::try_from(violations.len()).unwrap_or(u64::MAX),
        },
        end_of_month,
        daily: walked.days,
        series: walked.series,
        violations,
        inventory_changes: fleet.inventory(),
        stale,
        gaps,
        conflicts,
        rejections,
        log: input.log.clone(),
        location,
    })
}

/// A counted host.
#[derive(Debug, Clone, Copy)]
struct Host {
    country: CountryCode,
    tpp: u64,
    hardware_tpp: u64,
    devices: u32,
}

/// A country's hosts now, at the month's start, and their moves during the month.
#[derive(Debug, Clone, Copy, Default)]
struct Tally {
    hosts: u64,
    devices: u64,
    hosts_start: u64,
    devices_start: u64,
    tpp_start: u64,
    added: u64,
    removed: u64,
}

/// Every counted host and the distribution they make, updated one change at a time.
#[derive(Debug, Default)]
struct Fleet {
    /// Looked up, never iterated, so its order cannot reach the report.
    hosts: HashMap<String, Host>,
    distribution: Distribution,
    /// The part of `distribution` whose GPUs hold hardware evidence.
    hardware: Distribution,
    /// The part of `distribution` whose hosts are location-verified in their site's country.
    located: Distribution,
    /// Hosts location-verified now, counted or not.
    verified: HashSet<String>,
    countries: BTreeMap<CountryCode, Tally>,
    /// A change has been applied: from now on the books rest on evidence.
    evidence: bool,
}

impl Fleet {
    /// Applies `changes[index]`; `in_month` counts the hosts entering and leaving countries.
    fn apply(
        &mut self,
        index: usize,
        change: &HostChange,
        in_month: bool,
    ) -> Result<(), ReportError> {
        self.evidence = true;
        let new = match change.kind {
            ChangeKind::Attested => Some(Host {
                country: change.country,
                tpp: change.tpp,
                hardware_tpp: change.hardware_tpp.min(change.tpp),
                devices: change.devices,
            }),
            ChangeKind::Decommissioned => None,
        };
        let old = match new {
            Some(new) => match self.hosts.get_mut(&change.host_id) {
                Some(slot) => Some(std::mem::replace(slot, new)),
                None => {
                    self.hosts.insert(change.host_id.clone(), new);
                    None
                }
            },
            None => self.hosts.remove(&change.host_id),
        };
        let overflow = |_| ReportError::TppOverflow {
            index,
            host_id: change.host_id.clone(),
            at_ms: change.at_ms,
            country: change.country,
        };
        self.distribution
            .replace(
                old.map(|host| (host.country, host.tpp)),
                new.map(|host| (host.country, host.tpp)),
            )
            .map_err(overflow)?;
        self.hardware
            .replace(
                old.map(|host| (host.country, host.hardware_tpp)),
                new.map(|host| (host.country, host.hardware_tpp)),
            )
            .map_err(overflow)?;
        if self.verified.contains(&change.host_id) {
            self.located
                .replace(
                    old.map(|host| (host.country, host.tpp)),
                    new.map(|host| (host.country, host.tpp)),
                )
                .map_err(overflow)?;
        }
        if let Some(old) = old {
            let tally = self.countries.entry(old.country).or_default();
            tally.hosts = tally.hosts.saturating_sub(1);
            tally.devices = tally.devices.saturating_sub(u64::from(old.devices));
            if in_month && new.is_none_or(|new| new.country != old.country) {
                tally.removed += 1;
            }
        }
        if let Some(new) = new {
            let tally = self.countries.entry(new.country).or_default();
            tally.hosts += 1;
            tally.devices += u64::from(new.devices);
            if in_month && old.is_none_or(|old| old.country != new.country) {
                tally.added += 1;
            }
        }
        Ok(())
    }

    /// A host becomes location-verified, or ceases to be.
    fn locate(&mut self, change: &LocationChange) {
        let was = if change.verified {
            !self.verified.insert(change.host_id.clone())
        } else {
            self.verified.remove(&change.host_id)
        };
        if was == change.verified {
            return;
        }
        if let Some(host) = self.hosts.get(&change.host_id) {
            let contribution = Some((host.country, host.tpp));
            // A part of `distribution`, which fits in 64 bits, cannot overflow.
            let _ = if change.verified {
                self.located.replace(None, contribution)
            } else {
                self.located.replace(contribution, None)
            };
        }
    }

    /// Records the current state as the month's start.
    fn mark_start(&mut self) {
        for (country, tally) in &mut self.countries {
            tally.hosts_start = tally.hosts;
            tally.devices_start = tally.devices;
            tally.tpp_start = self.distribution.of(*country);
        }
    }

    /// Countries with at least one counted host, and their TPP.
    fn hosted(&self) -> impl Iterator<Item = (CountryCode, u64)> + '_ {
        self.countries
            .iter()
            .filter(|(_, tally)| tally.hosts > 0)
            .map(|(country, _)| (*country, self.distribution.of(*country)))
    }

    fn is_hosted(&self, country: CountryCode) -> bool {
        self.countries
            .get(&country)
            .is_some_and(|tally| tally.hosts > 0)
    }

    fn inventory(&self) -> Vec<InventoryChange> {
        self.countries
            .iter()
            .filter(|(_, t)| t.hosts_start > 0 || t.hosts > 0 || t.added > 0 || t.removed > 0)
            .map(|(country, tally)| InventoryChange {
                country: *country,
                tpp_start: tally.tpp_start,
                tpp_end: self.distribution.of(*country),
                hosts_start: tally.hosts_start,
                hosts_end: tally.hosts,
                hosts_added: tally.added,
                hosts_removed: tally.removed,
                devices_start: tally.devices_start,
                devices_end: tally.devices,
            })
            .collect()
    }
}

/// The host changes and location changes, walked together one instant at a time.
struct Timeline<'a> {
    changes: &'a [HostChange],
    located: &'a [LocationChange],
    next: usize,
    next_located: usize,
}

impl Timeline<'_> {
    /// The next instant with a change of either kind.
    fn next_ms(&self) -> Option<i64> {
        let host = self.changes.get(self.next).map(|c| c.at_ms);
        let located = self.located.get(self.next_located).map(|c| c.at_ms);
        match (host, located) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Applies every change at `at_ms`; `in_month` counts hosts entering and leaving
    /// countries. A host's record and its location state are independent, so the order of
    /// the two kinds within one instant cannot matter.
    fn apply(&mut self, at_ms: i64, fleet: &mut Fleet, in_month: bool) -> Result<(), ReportError> {
        while let Some(change) = self.changes.get(self.next).filter(|c| c.at_ms == at_ms) {
            fleet.apply(self.next, change, in_month)?;
            self.next += 1;
        }
        while let Some(change) = self
            .located
            .get(self.next_located)
            .filter(|c| c.at_ms == at_ms)
        {
            fleet.locate(change);
            self.next_located += 1;
        }
        Ok(())
    }
}

/// The evaluation of the current state and the shares derived from it.
#[derive(Debug)]
struct Current {
    /// The instant's verdict state.
    state: State,
    evaluation: Evaluation,
    tier1: Share,
    home: Option<Share>,
    /// The highest share of a Tier-2 country with a host (the lowest code among equals).
    max_tier2: Option<(CountryCode, Share)>,
}

impl Current {
    fn measure(policy: &Policy, fleet: &Fleet) -> Self {
        let evaluation = evaluate_located(policy, &fleet.distribution, &fleet.located);
        let total = evaluation.total_tpp;
        let mut max_tier2: Option<(CountryCode, Share)> = None;
        for line in &evaluation.countries {
            if line.tier == Tier::Two && fleet.is_hosted(line.country) {
                let share = Share::new(line.tpp, total);
                if max_tier2.is_none_or(|(_, highest)| share > highest) {
                    max_tier2 = Some((line.country, share));
                }
            }
        }
        // The one place an instant's state is decided.
        let state = if fleet.evidence {
            State::from(evaluation.verdict())
        } else {
            State::NoEvidence
        };
        Self {
            state,
            tier1: Share::new(evaluation.tier1_tpp, total),
            home: evaluation.home.map(|(_, tpp)| Share::new(tpp, total)),
            max_tier2,
            evaluation,
        }
    }

    /// Shares are defined: something is counted.
    fn counts(&self) -> bool {
        self.evaluation.total_tpp > 0
    }

    /// The share a broken rule is about.
    fn share_of(&self, violation: &Violation, fleet: &Fleet) -> Share {
        match (violation.rule, violation.country) {
            (Rule::Tier1MinShare, _) => self.tier1,
            (Rule::HomeMinShare, _) => self.home.unwrap_or(Share::new(0, 0)),
            (_, Some(country)) => {
                Share::new(fleet.distribution.of(country), self.evaluation.total_tpp)
            }
            (_, None) => Share::new(0, 0),
        }
    }
}

/// A violation not yet ended.
#[derive(Debug, Clone, Copy)]
struct Open {
    start_ms: i64,
    worst: Share,
}

/// The extremes and state of the current day so far.
#[derive(Debug)]
struct DayWatch {
    index: u32,
    min_tier1: Option<Share>,
    max_tier2: Option<(CountryCode, Share)>,
    state: State,
}

impl DayWatch {
    fn new(index: u32) -> Self {
        Self {
            index,
            min_tier1: None,
            max_tier2: None,
            state: State::NoEvidence,
        }
    }
}

/// What a walk collected.
#[derive(Debug)]
struct Walked {
    series: Series,
    /// Every violation interval, in order.
    violations: Vec<ViolationInterval>,
    days: Vec<Day>,
    /// Every instant of the period folded.
    state: State,
    evidence_from_ms: Option<i64>,
}

/// The walk through the period's instants.
#[derive(Debug)]
struct Walk<'a> {
    policy: &'a Policy,
    start_ms: i64,
    /// The period's end: the month's end, or the as-of instant.
    as_of_ms: i64,
    /// Days with at least one instant before `as_of_ms`.
    days_covered: u32,
    current: Current,
    day: DayWatch,
    days: Vec<Day>,
    tier1: SeriesBuilder,
    home: Option<SeriesBuilder>,
    tier2: BTreeMap<CountryCode, SeriesBuilder>,
    open: BTreeMap<Violation, Open>,
    closed: Vec<ViolationInterval>,
    /// Since when nothing has been counted, while nothing is.
    no_compute_since: Option<i64>,
    no_compute: Vec<Span>,
    state: State,
    evidence_from_ms: Option<i64>,
}

impl<'a> Walk<'a> {
    /// Starts at the month's first instant, with the fleet as it is then.
    fn start(input: &'a ReportInput, fleet: &Fleet) -> Self {
        let (start_ms, as_of_ms) = (input.month.start_ms(), input.as_of_ms);
        // `build` checked start < as_of <= month end, so this is 1 to the month's days.
        let days_covered = u32::try_from((as_of_ms - start_ms + DAY_MS - 1) / DAY_MS)
            .unwrap_or(u32::MAX)
            .min(input.month.days());
        let mut walk = Self {
            policy: &input.policy,
            start_ms,
            as_of_ms,
            days_covered,
            current: Current::measure(&input.policy, fleet),
            day: DayWatch::new(0),
            days: Vec::new(),
            tier1: SeriesBuilder::new(start_ms, as_of_ms),
            home: input
                .policy
                .home_rule()
                .map(|_| SeriesBuilder::new(start_ms, as_of_ms)),
            tier2: BTreeMap::new(),
            open: BTreeMap::new(),
            closed: Vec::new(),
            no_compute_since: None,
            no_compute: Vec::new(),
            state: State::NoEvidence,
            evidence_from_ms: None,
        };
        walk.record(start_ms, fleet);
        walk
    }

    /// Evaluates the fleet after every change at `at_ms`.
    fn observe(&mut self, at_ms: i64, fleet: &Fleet) {
        self.current = Current::measure(self.policy, fleet);
        self.record(at_ms, fleet);
    }

    /// Folds the current state, which holds from `at_ms`, into series, day and violations.
    fn record(&mut self, at_ms: i64, fleet: &Fleet) {
        self.fold_into_day();
        let current = &self.current;
        if current.state == State::NoEvidence {
            // Nothing to draw or break yet: the fleet holds nothing (evidence, once there,
            // stays, so no violation can be open).
            return;
        }
        if self.evidence_from_ms.is_none() {
            self.evidence_from_ms = Some(at_ms);
        }
        match (current.counts(), self.no_compute_since) {
            (false, None) => self.no_compute_since = Some(at_ms),
            (true, Some(from_ms)) => {
                self.no_compute.push(Span {
                    from_ms,
                    to_ms: at_ms,
                });
                self.no_compute_since = None;
            }
            _ => {}
        }
        let total = current.evaluation.total_tpp;
        self.tier1.push(at_ms, current.tier1.millipercent());
        if let (Some(series), Some(share)) = (&mut self.home, current.home) {
            series.push(at_ms, share.millipercent());
        }
        for line in &current.evaluation.countries {
            if line.tier != Tier::Two {
                continue;
            }
            let value = Share::new(line.tpp, total).millipercent();
            match self.tier2.get_mut(&line.country) {
                Some(series) => series.push(at_ms, value),
                None if fleet.is_hosted(line.country) => {
                    let mut series = SeriesBuilder::new(self.start_ms, self.as_of_ms);
                    series.push(at_ms, value);
                    self.tier2.insert(line.country, series);
                }
                None => {}
            }
        }

        if self.open.is_empty() && current.evaluation.violations.is_empty() {
            return;
        }
        let mut still_open = BTreeMap::new();
        for violation in &current.evaluation.violations {
            let share = current.share_of(violation, fleet);
            let open = match self.open.remove(violation) {
                Some(open) => Open {
                    start_ms: open.start_ms,
                    worst: match violation.rule {
                        Rule::Tier1MinShare | Rule::HomeMinShare => open.worst.min(share),
                        Rule::Tier2CountryMaxShare | Rule::Tier3Prohibited => open.worst.max(share),
                    },
                },
                None => Open {
                    start_ms: at_ms,
                    worst: share,
                },
            };
            still_open.insert(*violation, open);
        }
        for (violation, open) in std::mem::replace(&mut self.open, still_open) {
            self.closed.push(interval(violation, open, Some(at_ms)));
        }
    }

    /// Counts the current state as seen during the current day (and the month).
    fn fold_into_day(&mut self) {
        let current = &self.current;
        let day = &mut self.day;
        day.state = day.state.fold(current.state);
        self.state = self.state.fold(current.state);
        if !current.counts() {
            // No share is defined: no extreme to keep.
            return;
        }
        day.min_tier1 = Some(
            day.min_tier1
                .map_or(current.tier1, |low| low.min(current.tier1)),
        );
        if let Some((country, share)) = current.max_tier2
            && day.max_tier2.is_none_or(|(_, highest)| share > highest)
        {
            day.max_tier2 = Some((country, share));
        }
    }

    /// Closes every covered day that ends at or before `at_ms`, with the state as it is
    /// before the changes at `at_ms`.
    fn close_days_before(&mut self, at_ms: i64, fleet: &Fleet) {
        while self.day.index < self.days_covered && at_ms >= self.day_end(self.day.index) {
            self.close_day(fleet);
            self.day = DayWatch::new(self.day.index + 1);
            // The state carried over holds at the new day's first instant unless a change
            // happens exactly then.
            if self.day.index < self.days_covered && at_ms > self.day_start(self.day.index) {
                self.fold_into_day();
            }
        }
    }

    fn close_day(&mut self, fleet: &Fleet) {
        let current = &self.current;
        let total = current.evaluation.total_tpp;
        let countries = fleet
            .hosted()
            .map(|(country, tpp)| DayCountry {
                country,
                tier: self.policy.tier(country),
                tpp,
                share: Share::new(tpp, total).text(),
            })
            .collect();
        let index = self.day.index;
        self.days.push(Day {
            date: format_date(self.day_start(index)),
            partial: self.day_end(index) < self.day_start(index + 1),
            total_tpp: total,
            tier1_share: current.tier1.text(),
            home_share: current.home.map(Share::text),
            state: current.state,
            state_all_day: self.day.state,
            countries,
            min_tier1_share: self.day.min_tier1.map(Share::text),
            max_tier2_share: self.day.max_tier2.map(|(country, share)| PeakShare {
                country,
                share: share.text(),
            }),
        });
    }

    fn day_start(&self, index: u32) -> i64 {
        self.start_ms + i64::from(index) * DAY_MS
    }

    /// Where day `index` ends for this report: midnight, or the as-of instant on its day.
    fn day_end(&self, index: u32) -> i64 {
        self.day_start(index + 1).min(self.as_of_ms)
    }

    /// The series, every violation interval in order, the days and the period's state.
    fn finish(mut self) -> Walked {
        if let Some(from_ms) = self.no_compute_since {
            self.no_compute.push(Span {
                from_ms,
                to_ms: self.as_of_ms,
            });
        }
        let mut violations = self.closed;
        violations.extend(
            self.open
                .into_iter()
                .map(|(violation, open)| interval(violation, open, None)),
        );
        violations.sort_by_key(|v| (v.start_ms, v.rule, v.country));
        let series = Series {
            tier1: self.tier1.finish(),
            home: self.home.map(SeriesBuilder::finish).unwrap_or_default(),
            tier2: self
                .tier2
                .into_iter()
                .map(|(country, series)| (country.as_str().to_owned(), series.finish()))
                .collect(),
            no_compute: self.no_compute,
        };
        Walked {
            series,
            violations,
            days: self.days,
            state: self.state,
            evidence_from_ms: self.evidence_from_ms,
        }
    }
}

fn interval(violation: Violation, open: Open, end_ms: Option<i64>) -> ViolationInterval {
    ViolationInterval {
        rule: violation.rule,
        country: violation.country,
        start_ms: open.start_ms,
        end_ms,
        worst_share: open.worst.text(),
    }
}

fn limits(policy: &Policy) -> Limits {
    Limits {
        tier1_min_share: limit_text(policy.tier1_min_share),
        home: policy.home_rule().map(|(country, share)| HomeLimit {
            country,
            min_share: limit_text(share),
        }),
        tier2_country_max_share: limit_text(policy.tier2_country_max_share),
        tier3_prohibited: policy.tier3_prohibited,
        tier1_requires_location: policy.location.required_for_tier1,
    }
}

/// The location verdicts of the hosts counted at the end of the period, and the TPP of the
/// verified ones by country. A counted host the input does not list is unmeasured; a listed
/// host not counted is ignored.
fn located(
    location: &LocationInput,
    fleet: &Fleet,
) -> Result<(LocationSection, Distribution), ReportError> {
    let mut section = LocationSection {
        measurements: location.measurements,
        ..LocationSection::default()
    };
    let mut verified = Distribution::new();
    let mut seen = HashSet::new();
    let mut listed: u64 = 0;
    for (index, located) in location.hosts.iter().enumerate() {
        if !seen.insert(located.host_id.as_str()) {
            return Err(ReportError::LocatedHostRepeated {
                index,
                host_id: located.host_id.clone(),
            });
        }
        let Some(host) = fleet.hosts.get(&located.host_id) else {
            continue;
        };
        listed += 1;
        let counts = &mut section.hosts;
        match located.verdict {
            LocationVerdict::Unmeasured => counts.unmeasured += 1,
            LocationVerdict::Unverified => counts.unverified += 1,
            LocationVerdict::Verified => {
                counts.verified += 1;
                // A part of the fleet's distribution, which fits in 64 bits, cannot overflow.
                let _ = verified.add(host.country, host.tpp);
            }
            LocationVerdict::Inconsistent => {
                counts.inconsistent += 1;
                section.inconsistent.push(InconsistentHost {
                    host_id: located.host_id.clone(),
                    reason: located.reason.clone(),
                });
            }
        }
    }
    let counted = u64::try_from(fleet.hosts.len()).unwrap_or(u64::MAX);
    section.hosts.unmeasured += counted.saturating_sub(listed);
    section
        .inconsistent
        .sort_by(|a, b| a.host_id.cmp(&b.host_id));
    Ok((section, verified))
}

fn end_of_month(
    current: &Current,
    fleet: &Fleet,
    verified: &Distribution,
    limits: &Limits,
) -> EndOfMonth {
    let evaluation = &current.evaluation;
    let countries = evaluation
        .countries
        .iter()
        .filter(|line| fleet.is_hosted(line.country))
        .map(|line| {
            let (limit, limit_kind) = limits.for_country(line.country, line.tier);
            let hardware_tpp = fleet.hardware.of(line.country);
            let location_verified_tpp = verified.of(line.country);
            CountryStanding {
                country: line.country,
                tier: line.tier,
                tpp: line.tpp,
                share: Share::new(line.tpp, evaluation.total_tpp).text(),
                hardware_tpp,
                hardware_share: Share::new(hardware_tpp, line.tpp).text(),
                location_verified_tpp,
                location_verified_share: Share::new(location_verified_tpp, line.tpp).text(),
                limit,
                limit_kind,
            }
        })
        .collect();
    EndOfMonth {
        total_tpp: evaluation.total_tpp,
        hardware_tpp: fleet.hardware.total(),
        hardware_share: Share::new(fleet.hardware.total(), evaluation.total_tpp).text(),
        location_verified_tpp: verified.total(),
        location_verified_share: Share::new(verified.total(), evaluation.total_tpp).text(),
        tier1_share: current.tier1.text(),
        tier1_unlocated_tpp: evaluation.tier1_unlocated_tpp,
        home_share: current.home.map(Share::text),
        countries,
        violations: evaluation
            .violations
            .iter()
            .map(|violation| RuleBreach {
                rule: violation.rule,
                country: violation.country,
            })
            .collect(),
    }
}

fn check_changes(changes: &[HostChange], end_ms: i64) -> Result<(), ReportError> {
    let mut previous_ms = i64::MIN;
    for (index, change) in changes.iter().enumerate() {
        if change.at_ms < previous_ms {
            return Err(ReportError::ChangeOutOfOrder {
                index,
                host_id: change.host_id.clone(),
                at_ms: change.at_ms,
                previous_ms,
            });
        }
        if change.at_ms >= end_ms {
            return Err(ReportError::ChangeAfterMonth {
                index,
                host_id: change.host_id.clone(),
                at_ms: change.at_ms,
                end_ms,
            });
        }
        previous_ms = change.at_ms;
    }
    Ok(())
}

fn check_location_changes(changes: &[LocationChange], end_ms: i64) -> Result<(), ReportError> {
    let mut previous_ms = i64::MIN;
    for (index, change) in changes.iter().enumerate() {
        let misplaced = |problem: String| ReportError::LocationChangeMisplaced {
            index,
            host_id: change.host_id.clone(),
            at_ms: change.at_ms,
            problem,
        };
        if change.at_ms < previous_ms {
            return Err(misplaced(format!(
                "is older than the change before it at {previous_ms} ms: changes must be sorted oldest first"
            )));
        }
        if change.at_ms >= end_ms {
            return Err(misplaced(format!(
                "is not before the end of the report's period ({end_ms} ms)"
            )));
        }
        previous_ms = change.at_ms;
    }
    Ok(())
}

/// Silences overlapping `[start_ms, end_ms)`, clipped to it (one still running at the
/// period's end has no end), ordered by start, host and end.
fn stale_in_period(
    spans: &[StaleSpan],
    start_ms: i64,
    end_ms: i64,
) -> Result<Vec<StaleSpan>, ReportError> {
    let mut clipped = Vec::new();
    for (index, span) in spans.iter().enumerate() {
        if let Some(to_ms) = span.to_ms
            && to_ms < span.from_ms
        {
            return Err(ReportError::StaleSpanReversed {
                index,
                host_id: span.host_id.clone(),
                from_ms: span.from_ms,
                to_ms,
            });
        }
        if span.from_ms >= end_ms || span.to_ms.is_some_and(|to_ms| to_ms <= start_ms) {
            continue;
        }
        clipped.push(StaleSpan {
            from_ms: span.from_ms.max(start_ms),
            to_ms: span.to_ms.filter(|to_ms| *to_ms < end_ms),
            ..span.clone()
        });
    }
    clipped.sort_by(|a, b| {
        let key = |s: &StaleSpan| (s.from_ms, s.host_id.clone(), s.to_ms.unwrap_or(i64::MAX));
        key(a).cmp(&key(b)).then_with(|| a.cmp(b))
    });
    Ok(clipped)
}

/// Checks that every event lies in `[start_ms, end_ms)` and orders them by instant and host
/// (events equal in both keep their order).
fn events_in_period<T: Clone>(
    list: &'static str,
    events: &[T],
    start_ms: i64,
    end_ms: i64,
    key: impl Fn(&T) -> (i64, &String),
) -> Result<Vec<T>, ReportError> {
    for (index, event) in events.iter().enumerate() {
        let (at_ms, host_id) = key(event);
        if !(start_ms..end_ms).contains(&at_ms) {
            return Err(ReportError::EventOutsideMonth {
                list,
                index,
                host_id: host_id.clone(),
                at_ms,
                start_ms,
                end_ms,
            });
        }
    }
    let mut sorted = events.to_vec();
    sorted.sort_by(|a, b| key(a).cmp(&key(b)));
    Ok(sorted)
}

fn rejections_by_reason(rejections: &[(String, u64)]) -> Result<Vec<RejectionCount>, ReportError> {
    let mut by_reason: BTreeMap<&str, u64> = BTreeMap::new();
    for (reason, count) in rejections {
        let sum = by_reason.entry(reason).or_insert(0);
        *sum = sum
            .checked_add(*count)
            .ok_or_else(|| ReportError::RejectionCountOverflow {
                reason: reason.clone(),
            })?;
    }
    Ok(by_reason
        .into_iter()
        .map(|(reason, count)| RejectionCount {
            reason: reason.to_owned(),
            count,
        })
        .collect())
}
