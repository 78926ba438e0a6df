//! Aligned text tables for people.

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

    /// Adds a row, one cell per column.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
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
