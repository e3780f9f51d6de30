//! raft-rs logs through `slog`; this drain forwards its lines to `tracing`, as the rest of
//! Sluice logs, with the key-value pairs (term, index, peer...) appended to the message.

use std::fmt::{self, Write};

/// A `slog` drain that writes every record as a `tracing` event of target `raft`.
struct TracingDrain;

/// Collects a record's key-value pairs as ` key=value`.
struct KvText(String);

impl slog::Serializer for KvText {
    fn emit_arguments(&mut self, key: slog::Key, val: &fmt::Arguments) -> slog::Result {
        // Writing into a String cannot fail.
        let _ = write!(self.0, " {key}={val}");
        Ok(())
    }
}

impl slog::Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record, values: &slog::OwnedKVList) -> Result<(), slog::Never> {
        let mut kv = KvText(String::new());
        let _ = slog::KV::serialize(&record.kv(), record, &mut kv);
        let _ = slog::KV::serialize(values, record, &mut kv);
        let message = record.msg();
        match record.level() {
            slog::Level::Critical | slog::Level::Error => {
                tracing::error!(target: "raft", "{message}{}", kv.0)
            }
            slog::Level::Warning => tracing::warn!(target: "raft", "{message}{}", kv.0),
            slog::Level::Info => tracing::info!(target: "raft", "{message}{}", kv.0),
            slog::Level::Debug | slog::Level::Trace => {
                tracing::debug!(target: "raft", "{message}{}", kv.0)
            }
        }
        Ok(())
    }
}

/// The logger handed to raft-rs for node `node_id`.
pub(crate) fn raft_logger(node_id: i32) -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!("quorum_node" => node_id))
}
