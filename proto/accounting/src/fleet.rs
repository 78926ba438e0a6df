//! Fleet plans: a CSV of where accelerators are (or will be), for `veuctl plan`.
//!
//! A header names the columns, in any order: `country`, `count`, and `accelerator` (catalogue id
//! or alias) or `tpp` (per unit), optionally `site`. Lines starting with `#` and blank lines are
//! skipped. Every bad line is reported with its number; nothing is evaluated from a file with
//! errors.

use std::fmt;

use crate::evaluation::{Distribution, TppOverflow};
use crate::{Catalogue, CountryCode, Policy};

/// What one unit of a row is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unit {
    /// A catalogue accelerator, with its TPP.
    Accelerator {
        /// Catalogue id (not the alias as typed).
        id: String,
        /// TPP per device from the catalogue.
        tpp: u64,
    },
    /// A TPP per unit given directly.
    Tpp(u64),
}

impl Unit {
    /// TPP of one unit.
    pub fn tpp(&self) -> u64 {
        match self {
            Unit::Accelerator { tpp, .. } | Unit::Tpp(tpp) => *tpp,
        }
    }
}

/// One accepted line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FleetRow {
    /// Line number in the file, from 1.
    pub line: u64,
    /// Where the units are.
    pub country: CountryCode,
    /// How many units.
    pub count: u64,
    /// What a unit is.
    pub unit: Unit,
    /// Free-text site name, if given.
    pub site: Option<String>,
    /// Whether the policy counts this accelerator as AI compute (rows given by TPP always count).
    pub counted: bool,
}

impl FleetRow {
    /// Counted TPP of the row: `count × unit TPP`, or 0 when the policy does not count it.
    pub fn counted_tpp(&self) -> u64 {
        if self.counted {
            // Invariant: checked for overflow when the row was parsed.
            self.count.saturating_mul(self.unit.tpp())
        } else {
            0
        }
    }
}

/// A parsed fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fleet {
    /// Every row, in file order.
    pub rows: Vec<FleetRow>,
    distribution: Distribution,
}

impl Fleet {
    /// Counted TPP per country.
    pub fn distribution(&self) -> &Distribution {
        &self.distribution
    }

    /// Parses a fleet CSV, pricing accelerators from `catalogue` and counting them per `policy`.
    pub fn parse(bytes: &[u8], catalogue: &Catalogue, policy: &Policy) -> Result<Self, FleetError> {
        Self::parse_with(bytes, catalogue, policy, usize::MAX, &mut |_| {})
    }

    /// [`Fleet::parse`], keeping at most `max_errors` bad lines (the others are only counted,
    /// so a huge bad file costs no memory for its errors) and telling `progress` how many bytes
    /// have been read, every [`PROGRESS_EVERY`] records.
    pub fn parse_with(
        bytes: &[u8],
        catalogue: &Catalogue,
        policy: &Policy,
        max_errors: usize,
        progress: &mut dyn FnMut(u64),
    ) -> Result<Self, FleetError> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .comment(Some(b'#'))
            .from_reader(bytes);
        let mut errors = Errors {
            kept: Vec::new(),
            more: 0,
            max: max_errors,
        };
        let lines = LineIndex::new(bytes);
        let record_line = |record: &csv::StringRecord| lines.of(record.position());
        let error_line = |error: &csv::Error| lines.of(error.position());
        let mut records = reader.records();

        let header = match records.next() {
            None => {
                return Err(FleetError::at(
                    1,
                    format!("the file is empty; {HEADER_HINT}"),
                ));
            }
            Some(Err(error)) => return Err(FleetError::at(error_line(&error), error.to_string())),
            Some(Ok(record)) => {
                let line = record_line(&record);
                Columns::parse(&record).map_err(|message| FleetError::at(line, message))?
            }
        };

        let mut rows = Vec::new();
        let mut distribution = Distribution::new();
        for (index, record) in records.enumerate() {
            if index % PROGRESS_EVERY == PROGRESS_EVERY - 1 {
                progress(match &record {
                    Ok(record) => record.position().map_or(0, csv::Position::byte),
                    Err(error) => error.position().map_or(0, csv::Position::byte),
                });
            }
            let record = match record {
                Ok(record) => record,
                Err(error) => {
                    errors.push(LineError {
                        line: error_line(&error),
                        message: csv_message(&error),
                    });
                    continue;
                }
            };
            let line = record_line(&record);
            match header.row(line, &record, catalogue, policy) {
                Ok(row) => {
                    let added = row
                        .count
                        .checked_mul(row.unit.tpp())
                        .ok_or(TppOverflow)
                        .and_then(|_| distribution.add(row.country, row.counted_tpp()));
                    match added {
                        Ok(()) => rows.push(row),
                        Err(overflow) => errors.push(LineError {
                            line,
                            message: format!("{overflow}: count × TPP is too large"),
                        }),
                    }
                }
                Err(message) => errors.push(LineError { line, message }),
            }
        }
        if errors.kept.is_empty() {
            Ok(Fleet { rows, distribution })
        } else {
            Err(FleetError {
                errors: errors.kept,
                more: errors.more,
            })
        }
    }
}

/// Records between two progress calls of [`Fleet::parse_with`].
pub const PROGRESS_EVERY: usize = 100_000;

/// The bad lines kept, and how many more there were.
struct Errors {
    kept: Vec<LineError>,
    more: u64,
    max: usize,
}

impl Errors {
    fn push(&mut self, error: LineError) {
        if self.kept.len() < self.max {
            self.kept.push(error);
        } else {
            self.more += 1;
        }
    }
}

/// Every bad line of a fleet file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct FleetError {
    /// One entry per bad line, in file order (the first ones only, when capped).
    pub errors: Vec<LineError>,
    /// Bad lines after those in `errors`, counted but not kept.
    pub more: u64,
}

impl FleetError {
    /// Every bad line: those kept and those only counted.
    pub fn total(&self) -> u64 {
        self.errors.len() as u64 + self.more
    }
}

impl FleetError {
    fn at(line: u64, message: String) -> Self {
        Self {
            errors: vec![LineError { line, message }],
            more: 0,
        }
    }
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines: Vec<String> = self.errors.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))?;
        if self.more > 0 {
            write!(f, "\n… and {} more", self.more)?;
        }
        Ok(())
    }
}

/// One bad line and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// Line number, from 1.
    pub line: u64,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

const HEADER_HINT: &str = "expected a header line naming the columns country, count, and accelerator or tpp (site optional)";

/// Column positions from the header line.
struct Columns {
    count: usize,
    country: usize,
    accelerator: Option<usize>,
    tpp: Option<usize>,
    site: Option<usize>,
    width: usize,
}

impl Columns {
    fn parse(header: &csv::StringRecord) -> Result<Self, String> {
        let (mut country, mut count, mut accelerator, mut tpp, mut site) =
            (None, None, None, None, None);
        for (index, name) in header.iter().enumerate() {
            let slot = match name.to_ascii_lowercase().as_str() {
                "country" => &mut country,
                "count" => &mut count,
                "accelerator" => &mut accelerator,
                "tpp" => &mut tpp,
                "site" => &mut site,
                _ => return Err(format!("unknown column {name:?}; {HEADER_HINT}")),
            };
            if slot.replace(index).is_some() {
                return Err(format!("column {name:?} appears twice"));
            }
        }
        let (Some(country), Some(count)) = (country, count) else {
            return Err(format!("missing column country or count; {HEADER_HINT}"));
        };
        if accelerator.is_none() && tpp.is_none() {
            return Err(format!("missing column accelerator or tpp; {HEADER_HINT}"));
        }
        Ok(Self {
            count,
            country,
            accelerator,
            tpp,
            site,
            width: header.len(),
        })
    }

    fn row(
        &self,
        line: u64,
        record: &csv::StringRecord,
        catalogue: &Catalogue,
        policy: &Policy,
    ) -> Result<FleetRow, String> {
        if record.len() != self.width {
            return Err(format!(
                "expected {} fields as in the header, found {}",
                self.width,
                record.len()
            ));
        }
        let field = |index: Option<usize>| {
            index
                .and_then(|index| record.get(index))
                .filter(|value| !value.is_empty())
        };
        let mut problems = Vec::new();
        let country = field(Some(self.country))
            .ok_or_else(|| "country is empty".to_owned())
            .and_then(|text| CountryCode::parse(text).map_err(|e| e.to_string()))
            .map_err(|e| problems.push(e))
            .ok();
        let count = match field(Some(self.count)) {
            None => {
                problems.push("count is empty".to_owned());
                None
            }
            Some(text) => whole_number(text)
                .ok_or_else(|| problems.push(format!("count {text:?} is not a whole number ≥ 0")))
                .ok(),
        };
        let given_tpp = field(self.tpp).map(|text| {
            whole_number(text)
                .filter(|tpp| *tpp > 0)
                .ok_or_else(|| format!("tpp {text:?} is not a whole number > 0 (TPP per unit)"))
        });
        let unit = match (field(self.accelerator), given_tpp) {
            (None, None) => Err("give an accelerator or a tpp per unit".to_owned()),
            (None, Some(tpp)) => tpp.map(Unit::Tpp),
            (Some(name), given) => match catalogue.by_id(name) {
                None => Err(unknown_accelerator(name, catalogue)),
                Some(accelerator) => match given {
                    Some(Ok(tpp)) if tpp != accelerator.tpp => Err(format!(
                        "tpp {tpp} disagrees with the catalogue's {} for {}; give one or the other",
                        accelerator.tpp, accelerator.id
                    )),
                    Some(Err(message)) => Err(message),
                    _ => Ok(Unit::Accelerator {
                        id: accelerator.id.clone(),
                        tpp: accelerator.tpp,
                    }),
                },
            },
        }
        .map_err(|e| problems.push(e))
        .ok();
        let (Some(country), Some(count), Some(unit)) = (country, count, unit) else {
            return Err(problems.join("; "));
        };
        let counted = match &unit {
            Unit::Accelerator { id, .. } => catalogue.by_id(id).is_some_and(|a| policy.counts(a)),
            Unit::Tpp(_) => true,
        };
        Ok(FleetRow {
            line,
            country,
            count,
            unit,
            site: field(self.site).map(str::to_owned),
            counted,
        })
    }
}

fn whole_number(text: &str) -> Option<u64> {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        text.parse().ok()
    } else {
        None
    }
}

fn unknown_accelerator(name: &str, catalogue: &Catalogue) -> String {
    let suggestions = catalogue.suggestions(name);
    let hint = if suggestions.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", suggestions.join(", "))
    };
    format!(
        "unknown accelerator {name:?}{hint} (`veuctl catalogue` lists ids and aliases; a tpp column takes any device)"
    )
}

/// Line numbers from byte offsets. The CSV reader's own line count drifts on blank lines, and a
/// record's offset can point at the blank or comment lines skipped before it.
struct LineIndex<'a> {
    bytes: &'a [u8],
    newlines: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let newlines = (0..bytes.len()).filter(|&i| bytes[i] == b'\n').collect();
        Self { bytes, newlines }
    }

    /// The 1-based line of the first content at or after the offset a record or error names.
    fn of(&self, position: Option<&csv::Position>) -> u64 {
        let mut start = usize::try_from(position.map_or(0, csv::Position::byte))
            .unwrap_or(usize::MAX)
            .min(self.bytes.len());
        loop {
            let rest = &self.bytes[start..];
            let end = rest.iter().position(|&b| b == b'\n');
            let line = &rest[..end.unwrap_or(rest.len())];
            let skipped = line.iter().all(u8::is_ascii_whitespace) || line.first() == Some(&b'#');
            match end {
                Some(end) if skipped => start += end + 1,
                _ => break,
            }
        }
        self.newlines.partition_point(|&newline| newline < start) as u64 + 1
    }
}

fn csv_message(error: &csv::Error) -> String {
    match error.kind() {
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8 text".to_owned(),
        _ => error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Fleet, FleetError> {
        Fleet::parse(
            text.as_bytes(),
            &Catalogue::builtin().unwrap(),
            &Policy::uveu_2025_us().unwrap(),
        )
    }

    fn code(text: &str) -> CountryCode {
        CountryCode::parse(text).unwrap()
    }

    #[test]
    fn accepts_accelerators_tpp_sites_and_comments() {
        let fleet = parse(
            "# a comment\ncountry,count,accelerator,site\nUS,8,H100-SXM5-80GB,\"Ashburn, VA\"\n\nmy,16,h100,\n",
        )
        .unwrap();
        assert_eq!(fleet.rows.len(), 2);
        assert_eq!(fleet.rows[0].line, 3);
        assert_eq!(fleet.rows[0].site.as_deref(), Some("Ashburn, VA"));
        assert_eq!(fleet.rows[1].line, 5);
        assert_eq!(fleet.distribution().of(code("US")), 8 * 15840);
        assert_eq!(fleet.distribution().of(code("MY")), 16 * 15840);

        let fleet = parse("tpp,country,count\n100,US,3\n100,US,2\n").unwrap();
        assert_eq!(fleet.distribution().of(code("US")), 500);
    }

    #[test]
    fn a_cap_keeps_the_first_bad_lines_and_counts_the_rest() {
        let mut text = String::from("country,count,accelerator\n");
        for _ in 0..250_000 {
            text.push_str("XX,8,H100\n");
        }
        let mut reported = Vec::new();
        let error = Fleet::parse_with(
            text.as_bytes(),
            &Catalogue::builtin().unwrap(),
            &Policy::uveu_2025_us().unwrap(),
            3,
            &mut |done| reported.push(done),
        )
        .unwrap_err();
        let lines: Vec<u64> = error.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [2, 3, 4]);
        assert_eq!(error.more, 249_997);
        assert_eq!(error.total(), 250_000);
        assert!(
            error.to_string().ends_with("\n… and 249997 more"),
            "{error}"
        );
        // Every 100,000 records, at the byte the record starts.
        let record = "XX,8,H100\n".len() as u64;
        let header = "country,count,accelerator\n".len() as u64;
        assert_eq!(
            reported,
            [header + 99_999 * record, header + 199_999 * record]
        );
    }

    #[test]
    fn reports_every_bad_line_with_its_number() {
        let error = parse(
            "country,count,accelerator,tpp\n\
             US,8,H100-SXM5-80GB,\n\
             XX,8,H100,\n\
             US,-1,H100,\n\
             US,8,H1OO,\n\
             US,8,,\n\
             US,8,H100,12000\n\
             US,8\n\
             US,2,,0\n\
             ,,,\n",
        )
        .unwrap_err();
        let lines: Vec<u64> = error.errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 8, 9, 10], "{error}");
        let text = error.to_string();
        for expected in [
            "line 3: \"XX\" is not an ISO 3166-1 alpha-2 country code",
            "line 4: count \"-1\" is not a whole number",
            "line 5: unknown accelerator \"H1OO\"",
            "line 6: give an accelerator or a tpp per unit",
            "line 7: tpp 12000 disagrees with the catalogue's 15840",
            "line 8: expected 4 fields as in the header, found 2",
            "line 9: tpp \"0\" is not a whole number > 0",
            "line 10: country is empty; count is empty",
        ] {
            assert!(text.contains(expected), "missing {expected:?} in\n{text}");
        }
    }

    #[test]
    fn header_problems_stop_at_line_one() {
        for (text, expected) in [
            ("", "line 1: the file is empty"),
            ("US,8,H100\n", "line 1: unknown column \"US\""),
            (
                "country,count\nUS,8\n",
                "line 1: missing column accelerator or tpp",
            ),
            (
                "country,country,tpp\n",
                "line 1: column \"country\" appears twice",
            ),
            (
                "country,accelerator\n",
                "line 1: missing column country or count",
            ),
        ] {
            let error = parse(text).unwrap_err().to_string();
            assert!(error.starts_with(expected), "{text:?} gave {error}");
        }
    }

    #[test]
    fn header_only_is_an_empty_fleet_and_a_byte_order_mark_is_ignored() {
        let fleet = parse("\u{feff}country,count,tpp\n").unwrap();
        assert!(fleet.rows.is_empty());
        assert_eq!(fleet.distribution().total(), 0);
    }

    #[test]
    fn overflow_is_reported_at_its_line() {
        let error = parse("country,count,tpp\nUS,18446744073709551615,2\nUS,1,1\n").unwrap_err();
        assert_eq!(error.errors.len(), 1);
        assert_eq!(error.errors[0].line, 2);
    }

    #[test]
    fn invalid_utf8_is_a_line_error() {
        let error = Fleet::parse(
            b"country,count,tpp\nUS,1,5\nM\xffY,1,5\n",
            &Catalogue::builtin().unwrap(),
            &Policy::uveu_2025_us().unwrap(),
        )
        .unwrap_err();
        assert_eq!(error.to_string(), "line 3: not valid UTF-8 text");
    }
}
