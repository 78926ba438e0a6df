//! The report as CSV and as one self-contained HTML page (JSON is [`crate::Report::to_json`]).

mod chart;
mod csv;
mod html;
mod tables;
mod text;

pub use csv::CSV_HEADER;
pub use html::HtmlOptions;
pub use text::grouped;
