//! `--format`: how each record is printed. A format is text with placeholders — `%k` key, `%v`
//! value, `%h` headers (`k=v,k2=v2`), `%t` timestamp (ms since the epoch), `%p` partition,
//! `%o` offset, `%%` a percent sign — and the escapes `\t`, `\n` and `\\`; or the name of a
//! preset. Each record ends with a newline.

use crate::tools::records::{bytes_text, headers_text};
use kafka_protocol::records::Record;

/// The presets: name, format.
pub const PRESETS: [(&str, &str); 3] = [
    ("value", "%v"),
    ("key-value", "%k\\t%v"),
    ("full", "%p\\t%o\\t%t\\t%k\\t%h\\t%v"),
];

/// One piece of a format.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Key,
    Value,
    Headers,
    Timestamp,
    Partition,
    Offset,
}

/// A parsed `--format`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format(Vec<Piece>);

impl Format {
    /// Parses a preset name or a format string (for clap: the error names what is wrong).
    pub fn parse(s: &str) -> Result<Format, String> {
        let spec = PRESETS
            .iter()
            .find(|(name, _)| *name == s)
            .map_or(s, |(_, f)| *f);
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut chars = spec.chars();
        while let Some(c) = chars.next() {
            let piece = match (c, chars.clone().next()) {
                ('%', Some(n)) => match n {
                    'k' => Piece::Key,
                    'v' => Piece::Value,
                    'h' => Piece::Headers,
                    't' => Piece::Timestamp,
                    'p' => Piece::Partition,
                    'o' => Piece::Offset,
                    '%' => Piece::Text("%".into()),
                    other => return Err(unknown(&format!("%{other}"))),
                },
                ('\\', Some(n)) => match n {
                    't' => Piece::Text("\t".into()),
                    'n' => Piece::Text("\n".into()),
                    '\\' => Piece::Text("\\".into()),
                    other => return Err(unknown(&format!("\\{other}"))),
                },
                ('%', None) | ('\\', None) => return Err(unknown(&c.to_string())),
                (c, _) => {
                    text.push(c);
                    continue;
                }
            };
            chars.next();
            match piece {
                Piece::Text(t) => text.push_str(&t),
                p => {
                    if !text.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(p);
                }
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Format(pieces))
    }

    /// The line for `record` of `partition`, newline included.
    pub fn render(&self, record: &Record, partition: i32) -> String {
        let mut line = String::new();
        for piece in &self.0 {
            match piece {
                Piece::Text(t) => line.push_str(t),
                Piece::Key => line.push_str(&bytes_text(record.key.as_deref(), false)),
                Piece::Value => line.push_str(&bytes_text(record.value.as_deref(), false)),
                Piece::Headers => line.push_str(&headers_text(&record.headers, false)),
                Piece::Timestamp => line.push_str(&record.timestamp.to_string()),
                Piece::Partition => line.push_str(&partition.to_string()),
                Piece::Offset => line.push_str(&record.offset.to_string()),
            }
        }
        line.push('\n');
        line
    }
}

fn unknown(what: &str) -> String {
    let presets: Vec<&str> = PRESETS.iter().map(|(n, _)| *n).collect();
    format!(
        "unknown '{what}' in the format: use %k %v %h %t %p %o %%, \\t \\n \\\\, or a preset ({})",
        presets.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::TimestampType;

    fn record() -> Record {
        Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: 42,
            sequence: -1,
            timestamp: 1700,
            key: None,
            value: Some(Bytes::from("hello")),
            headers: IndexMap::from([
                (StrBytes::from_static_str("a"), Some(Bytes::from("1"))),
                (StrBytes::from_static_str("b"), None),
            ]),
        }
    }

    #[test]
    fn placeholders_escapes_and_presets() {
        let r = record();
        let f = Format::parse("%p/%o %t [%k] %v {%h} 100%%").unwrap();
        assert_eq!(
            f.render(&r, 3),
            "3/42 1700 [null] hello {a=1,b=null} 100%\n"
        );
        assert_eq!(Format::parse("value").unwrap().render(&r, 0), "hello\n");
        assert_eq!(
            Format::parse("key-value").unwrap().render(&r, 0),
            "null\thello\n"
        );
        assert_eq!(
            Format::parse("full").unwrap().render(&r, 1),
            "1\t42\t1700\tnull\ta=1,b=null\thello\n"
        );
        assert_eq!(
            Format::parse("a\\\\b\\n").unwrap().render(&r, 0),
            "a\\b\n\n"
        );
    }

    #[test]
    fn unknown_placeholders_are_refused() {
        assert!(Format::parse("%x").unwrap_err().contains("'%x'"));
        assert!(Format::parse("50%").is_err());
        assert!(Format::parse("\\q")
            .unwrap_err()
            .contains("preset (value, key-value, full)"));
    }
}
