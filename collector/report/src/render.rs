//! The report as CSV and as one self-contained HTML page (JSON is [`crate::Report::to_json`]).

mod chart;
mod csv;
mod html;

pub use csv::CSV_HEADER;
