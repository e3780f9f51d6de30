//! Rendering findings: an aligned text table (the `why` column wrapped) and JSON.

use crate::report::{Finding, Status};

/// Width the `why` column is wrapped to.
pub const WHY_WIDTH: usize = 60;

const HEADERS: [&str; 5] = ["SETTING", "CURRENT", "RECOMMENDED", "WHY", "STATUS"];

/// Split `text` into lines of at most `width` characters at spaces (a longer word stays whole).
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() || lines.is_empty() {
        lines.push(line);
    }
    lines
}

/// The findings as an aligned table, one row per setting (continuation lines for long `why`
/// text), followed by a count per status.
pub fn render_table(findings: &[Finding]) -> String {
    let rows: Vec<[Vec<String>; 5]> = findings
        .iter()
        .map(|f| {
            [
                vec![f.setting.clone()],
                vec![f.current.clone()],
                vec![f.recommended.clone()],
                wrap(&f.why, WHY_WIDTH),
                vec![f.status.to_string()],
            ]
        })
        .collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            for line in cell {
                *w = (*w).max(line.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut push_line = |cells: [&str; 5]| {
        let mut line = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                line.push_str("  ");
            }
            line.push_str(cell);
            if i < 4 {
                line.push_str(&" ".repeat(w - cell.chars().count()));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    };
    push_line(HEADERS);
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    push_line([&rule[0], &rule[1], &rule[2], &rule[3], &rule[4]]);
    for (n, row) in rows.iter().enumerate() {
        if n > 0 && rows.iter().any(|r| r[3].len() > 1) {
            push_line(["", "", "", "", ""]);
        }
        let height = row.iter().map(Vec::len).max().unwrap_or(1);
        for i in 0..height {
            let cell = |c: usize| row[c].get(i).map_or("", String::as_str);
            push_line([cell(0), cell(1), cell(2), cell(3), cell(4)]);
        }
    }
    out.push('\n');
    out.push_str(&summary(findings));
    out.push('\n');
    out
}

/// `3 ok, 2 warn, 0 fail, 1 unknown`.
pub fn summary(findings: &[Finding]) -> String {
    Status::ALL
        .iter()
        .map(|s| format!("{} {s}", findings.iter().filter(|f| f.status == *s).count()))
        .collect::<Vec<_>>()
        .join(", ")
}
