//! Java-properties parsing, as `java.util.Properties.load` reads Kafka's `server.properties`.
//!
//! Supported: `key=value`, `key: value` and `key value`; `#` and `!` comment lines; blank
//! lines; a line ending in an odd number of backslashes continues on the next line (whose
//! leading whitespace is dropped); escapes `\t \n \r \f \\ \uHHHH` (surrogate pairs too), and
//! `\<any>` meaning `<any>` (so `\=`, `\:`, `\ ` and `\#` may appear in keys). Unlike Java,
//! unescaped trailing whitespace of a value is removed — Kafka trims values when it parses them,
//! so the result is the same — and files are read as UTF-8 rather than ISO-8859-1 (identical for
//! ASCII files, and what people editing a file today expect).

use super::ConfigError;
use std::path::Path;

/// Reads and parses a properties file; errors name the file (and line, for syntax errors).
pub fn read_properties(path: &Path) -> Result<Vec<(String, String, usize)>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_properties(&text, &path.display().to_string())
}

/// Parses properties text into `(key, value, line)` triples in file order (later duplicates
/// are kept; callers let the last one win, as `Properties` does). `line` is the 1-based line on
/// which the entry starts; `file` is only used in error messages.
pub fn parse_properties(
    text: &str,
    file: &str,
) -> Result<Vec<(String, String, usize)>, ConfigError> {
    let lines: Vec<&str> = split_lines(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let start_line = i + 1;
        let first = lines[i].trim_start_matches(is_ws);
        i += 1;
        if first.is_empty() || first.starts_with('#') || first.starts_with('!') {
            continue;
        }
        // Join continuation lines into one logical line.
        let mut logical = String::from(first);
        while ends_with_odd_backslashes(&logical) {
            logical.pop();
            match lines.get(i) {
                Some(next) => {
                    logical.push_str(next.trim_start_matches(is_ws));
                    i += 1;
                }
                None => break,
            }
        }
        let (key, value) = split_entry(&logical, file, start_line)?;
        out.push((key, value, start_line));
    }
    Ok(out)
}

/// Splits on `\n`, `\r\n` and lone `\r`, the line terminators `Properties` recognises.
fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                start = i + 1;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    if start < text.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Whitespace as `Properties` defines it: space, tab, form feed.
fn is_ws(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\x0c'
}

fn ends_with_odd_backslashes(s: &str) -> bool {
    s.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Splits one logical line into an unescaped key and value.
fn split_entry(line: &str, file: &str, line_no: usize) -> Result<(String, String), ConfigError> {
    // The key ends at the first unescaped '=', ':' or whitespace.
    let mut key_end = line.len();
    let mut escaped = false;
    for (idx, c) in line.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_ws(c) {
            key_end = idx;
            break;
        }
    }
    let raw_key = &line[..key_end];
    let mut rest = line[key_end..].trim_start_matches(is_ws);
    if let Some(r) = rest.strip_prefix(['=', ':']) {
        rest = r.trim_start_matches(is_ws);
    }
    let err = |message: String| ConfigError::Syntax {
        file: file.to_string(),
        line: line_no,
        message,
    };
    let key = unescape(raw_key).map_err(err)?;
    let value = unescape(rest).map_err(|m| ConfigError::Syntax {
        file: file.to_string(),
        line: line_no,
        message: format!("{m} in the value of '{key}'"),
    })?;
    Ok((key, value))
}

/// Resolves backslash escapes and drops unescaped trailing whitespace.
fn unescape(raw: &str) -> Result<String, String> {
    let mut out = String::with_capacity(raw.len());
    // Length of `out` up to and including the last character that must be kept (anything
    // but unescaped trailing whitespace).
    let mut keep = 0;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            if !c.is_whitespace() {
                keep = out.len();
            }
            continue;
        }
        let decoded = match chars.next() {
            None => break,
            Some('t') => '\t',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('f') => '\x0c',
            Some('u') => {
                let hi = read_hex4(&mut chars)?;
                if (0xD800..0xDC00).contains(&hi) {
                    // A high surrogate must be followed by an escaped low surrogate.
                    let mut look = chars.clone();
                    if look.next() == Some('\\') && look.next() == Some('u') {
                        let lo = read_hex4(&mut look)?;
                        if (0xDC00..0xE000).contains(&lo) {
                            chars = look;
                            let cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                            char::from_u32(cp)
                                .ok_or_else(|| format!("invalid \\u escape {hi:04X}"))?
                        } else {
                            return Err(format!("unpaired surrogate \\u{hi:04X}"));
                        }
                    } else {
                        return Err(format!("unpaired surrogate \\u{hi:04X}"));
                    }
                } else {
                    char::from_u32(hi).ok_or_else(|| format!("unpaired surrogate \\u{hi:04X}"))?
                }
            }
            Some(other) => other,
        };
        out.push(decoded);
        keep = out.len();
    }
    out.truncate(keep);
    Ok(out)
}

fn read_hex4(chars: &mut std::str::Chars<'_>) -> Result<u32, String> {
    let mut v = 0u32;
    for _ in 0..4 {
        let d = chars
            .next()
            .and_then(|c| c.to_digit(16))
            .ok_or_else(|| "malformed \\uxxxx escape".to_string())?;
        v = v * 16 + d;
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<(String, String, usize)> {
        parse_properties(text, "test.properties").unwrap()
    }

    fn kv(k: &str, v: &str, l: usize) -> (String, String, usize) {
        (k.to_string(), v.to_string(), l)
    }

    #[test]
    fn separators_comments_and_blank_lines() {
        let got = parse("# comment\n! also comment\n\n a=1\nb: 2\nc 3\nd   =   4   \ne\nf=\n");
        assert_eq!(
            got,
            vec![
                kv("a", "1", 4),
                kv("b", "2", 5),
                kv("c", "3", 6),
                kv("d", "4", 7),
                kv("e", "", 8),
                kv("f", "", 9)
            ]
        );
    }

    #[test]
    fn values_keep_inner_separators() {
        assert_eq!(
            parse("listeners=PLAINTEXT://:9092"),
            vec![kv("listeners", "PLAINTEXT://:9092", 1)]
        );
        assert_eq!(parse("a = b = c"), vec![kv("a", "b = c", 1)]);
        assert_eq!(
            parse("a=x # not a comment"),
            vec![kv("a", "x # not a comment", 1)]
        );
    }

    #[test]
    fn continuation_lines() {
        let got = parse("log.dirs=/a,\\\n    /b,\\\r\n\t/c\nnext=1\r\nlast=\\\\\n");
        assert_eq!(
            got,
            vec![
                kv("log.dirs", "/a,/b,/c", 1),
                kv("next", "1", 4),
                kv("last", "\\", 5)
            ]
        );
        // A trailing backslash on the final line simply ends the entry.
        assert_eq!(parse("a=b\\"), vec![kv("a", "b", 1)]);
        // Comments do not continue.
        assert_eq!(parse("#x\\\na=1"), vec![kv("a", "1", 2)]);
    }

    #[test]
    fn escapes() {
        let got = parse("k\\=x\\:y\\ z=v\\tw\\nx\\u0041\\\\\\#");
        assert_eq!(got, vec![kv("k=x:y z", "v\tw\nxA\\#", 1)]);
        assert_eq!(parse("e=\\uD83D\\uDE00"), vec![kv("e", "\u{1F600}", 1)]);
        // An escaped trailing space is kept; unescaped ones are trimmed.
        assert_eq!(parse("s=a\\  \t"), vec![kv("s", "a ", 1)]);
    }

    #[test]
    fn malformed_unicode_names_file_and_line() {
        let err = parse_properties("a=1\nb=\\u12G4\n", "server.properties").unwrap_err();
        assert_eq!(
            err.to_string(),
            "malformed \\uxxxx escape in the value of 'b' (line 2 of server.properties)"
        );
        let err = parse_properties("\\uZZZZ=1", "f").unwrap_err();
        assert!(err.to_string().contains("line 1 of f"), "{err}");
        assert!(parse_properties("a=\\uD800x", "f").is_err());
    }

    #[test]
    fn odd_inputs_never_panic() {
        let pieces = [
            "\\", "\\u", "\\uD800", "\\uDC00", "=", ":", " ", "\t", "\r", "\n", "#", "é", "a", "0",
        ];
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    let _ = parse_properties(&format!("{a}{b}{c}"), "f");
                }
            }
        }
        assert_eq!(parse("=v"), vec![kv("", "v", 1)]);
    }

    #[test]
    fn read_missing_file_names_it() {
        let err = read_properties(Path::new("/nonexistent/sluice.properties")).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/sluice.properties"),
            "{err}"
        );
    }
}
