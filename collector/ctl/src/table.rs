//! Text for people: aligned tables, and [`escape`], which every printer applies to text that
//! comes from elsewhere (the collector, a bundle, a stored record), so no such text can move the
//! cursor, retitle the terminal, clear the screen or reorder what is shown.

use std::borrow::Cow;
use std::fmt::Write as _;

/// `text` as it is safe to print: control characters (C0 such as ESC, DEL, C1 such as CSI) and
/// invisible bidirectional controls written as `\u{1b}`, a backslash as `\\` (so an escape can
/// never be forged by the text itself), everything else unchanged. Borrowed when nothing changes.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(needs_escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            c if needs_escape(c) => {
                // Writing to a String cannot fail.
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// [`escape`] line by line: newlines kept, for multi-line messages (an error chain).
pub fn escape_lines(text: &str) -> String {
    text.split('\n').map(escape).collect::<Vec<_>>().join("\n")
}

fn needs_escape(c: char) -> bool {
    c == '\\' || c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A minimal aligned table: a header line, then rows, columns two spaces apart.
#[derive(Debug)]
pub struct Columns {
    headers: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Columns {
    /// Columns named `headers`; `right[i]` right-aligns column `i` (numbers).
    pub fn new(headers: &[&str], right: &[bool]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            right: right.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row, one cell per column, each cell [`escape`]d.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|cell| match escape(&cell) {
                    Cow::Borrowed(_) => cell,
                    Cow::Owned(escaped) => escaped,
                })
                .collect(),
        );
    }

    /// The table, each line without trailing spaces.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|i| {
                std::iter::once(&self.headers[i])
                    .chain(self.rows.iter().filter_map(|row| row.get(i)))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let render_row = |cells: &[String]| {
            let line = cells
                .iter()
                .enumerate()
                .map(|(i, cell)| {
                    let width = widths[i];
                    if self.right.get(i).copied().unwrap_or(false) {
                        format!("{cell:>width$}")
                    } else {
                        format!("{cell:<width$}")
                    }
                })
                .collect::<Vec<_>>()
                .join("  ");
            line.trim_end().to_owned() + "\n"
        };
        let mut out = render_row(&self.headers);
        for row in &self.rows {
            out.push_str(&render_row(row));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_controls_are_shown_as_escapes_and_plain_text_is_untouched() {
        assert_eq!(
            escape("gpu\u{1b}]0;pwned\u{7}\u{1b}[2J"),
            "gpu\\u{1b}]0;pwned\\u{7}\\u{1b}[2J"
        );
        assert_eq!(
            escape("a\u{9b}31m\u{7f}\r\n\t"),
            "a\\u{9b}31m\\u{7f}\\u{d}\\u{a}\\u{9}"
        );
        assert_eq!(escape("\u{202e}txt.exe"), "\\u{202e}txt.exe");
        assert_eq!(escape("already \\u{1b}"), "already \\\\u{1b}");
        for plain in ["NVIDIA H100 80GB HBM3", "gpu-nœud-01", "東京-1", ""] {
            assert!(matches!(escape(plain), Cow::Borrowed(text) if text == plain));
        }
        assert_eq!(escape_lines("one\u{1b}[K\ntwo"), "one\\u{1b}[K\ntwo");
    }

    #[test]
    fn table_cells_are_escaped_and_aligned_by_what_is_shown() {
        let mut table = Columns::new(&["Host", "TPP"], &[false, true]);
        table.row(vec!["evil\u{1b}[2J".into(), "1".into()]);
        table.row(vec!["ok".into(), "22".into()]);
        assert_eq!(
            table.render(),
            "Host           TPP\nevil\\u{1b}[2J    1\nok              22\n"
        );
        assert!(!table.render().contains('\u{1b}'));
    }
}
