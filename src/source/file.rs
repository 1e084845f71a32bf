//! The `file:PATH` source: Flink-format JSON lines, split across workers in round-robin blocks.
//!
//! Every worker scans the whole file but parses only its own blocks of [`BLOCK_LINES`] lines
//! (block `b` belongs to worker `b mod peers`), so all workers move through event time together
//! and none holds the global watermark back while the others' windows pile up. Standard input
//! (`file:-`) can be read only once, so worker 0 reads all of it.
//!
//! A line that is not a Nexmark event — bad JSON, wrong types, missing fields, an unknown
//! `event_type`, a bad timestamp, invalid UTF-8, or longer than the size cap — becomes a dead
//! letter with its file and line; the run goes on. Blank lines are skipped.

use super::{parse_record, Ingest, ReadStatus, Reader, SourceError};
use crate::deadletter::Origin;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::time::Instant;

/// Lines per round-robin block.
pub const BLOCK_LINES: u64 = 1024;

/// Default cap on one record's size.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// One worker's reader of a JSON-lines file.
pub struct FileReader {
    input: BufReader<Box<dyn Read + Send>>,
    path: String,
    index: u64,
    peers: u64,
    max_record_bytes: usize,
    /// Lines consumed so far (the next line's 0-based index).
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

/// One line as read: its bytes (up to the cap) and whether it was longer.
struct Line {
    oversized: bool,
}

impl FileReader {
    /// Opens worker `index` of `peers`' share of `path` (`-` is standard input, read by worker 0).
    pub fn open(
        path: &Path,
        index: usize,
        peers: usize,
        max_record_bytes: usize,
    ) -> Result<Self, SourceError> {
        let label = path.display().to_string();
        let (input, index, peers): (Box<dyn Read + Send>, u64, u64) = if label == "-" {
            if index == 0 {
                (Box::new(io::stdin()), 0, 1)
            } else {
                (Box::new(io::empty()), 0, 1)
            }
        } else {
            let file = File::open(path).map_err(|source| SourceError::Io {
                path: label.clone(),
                source,
            })?;
            (Box::new(file), index as u64, peers as u64)
        };
        Ok(FileReader {
            input: BufReader::with_capacity(1 << 20, input),
            path: label,
            index,
            peers,
            max_record_bytes,
            line: 0,
            buf: Vec::new(),
            done: false,
        })
    }

    fn mine(&self, line: u64) -> bool {
        (line / BLOCK_LINES) % self.peers == self.index
    }

    /// Reads the next line into `self.buf` (if `keep`, and only up to the cap) or skips it.
    /// Returns `None` at end of input.
    fn next_line(&mut self, keep: bool) -> io::Result<Option<Line>> {
        self.buf.clear();
        let mut oversized = false;
        let mut seen_any = false;
        loop {
            let available = self.input.fill_buf()?;
            if available.is_empty() {
                return Ok(seen_any.then_some(Line { oversized }));
            }
            seen_any = true;
            let (chunk, consumed, ends) = match memchr::memchr(b'\n', available) {
                Some(i) => (&available[..i], i + 1, true),
                None => (available, available.len(), false),
            };
            if keep {
                // Keep at most cap + 1 bytes: enough to know the line is over the cap, and to
                // show its head in the dead letter, without buffering a huge line.
                let room = (self.max_record_bytes + 1).saturating_sub(self.buf.len());
                self.buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                oversized = self.buf.len() > self.max_record_bytes;
            }
            self.input.consume(consumed);
            if ends {
                return Ok(Some(Line { oversized }));
            }
        }
    }

    fn parse(&self, line_no: u64, line: &Line, out: &mut Ingest) {
        let mut bytes = self.buf.as_slice();
        if let Some(stripped) = bytes.strip_suffix(b"\r") {
            bytes = stripped;
        }
        if !line.oversized && bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        let origin = || Origin::File {
            file: self.path.clone(),
            line: line_no + 1,
        };
        parse_record(bytes, line.oversized, self.max_record_bytes, origin, out);
    }
}

impl Reader for FileReader {
    fn read(
        &mut self,
        _now: Instant,
        max: usize,
        out: &mut Ingest,
    ) -> Result<ReadStatus, SourceError> {
        if self.done {
            return Ok(ReadStatus::Done);
        }
        let mut taken = 0;
        while taken < max {
            let line_no = self.line;
            let keep = self.mine(line_no);
            let next = self.next_line(keep).map_err(|source| SourceError::Io {
                path: self.path.clone(),
                source,
            })?;
            let Some(line) = next else {
                self.done = true;
                return Ok(ReadStatus::Done);
            };
            self.line += 1;
            if keep {
                self.parse(line_no, &line, out);
                taken += 1;
            }
        }
        Ok(ReadStatus::More)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deadletter::Reason;
    use std::io::Write;

    fn read_all(path: &Path, index: usize, peers: usize, cap: usize) -> Ingest {
        let mut reader = FileReader::open(path, index, peers, cap).unwrap();
        let mut out = Ingest::default();
        while reader.read(Instant::now(), 7, &mut out).unwrap() != ReadStatus::Done {}
        out
    }

    #[test]
    fn dead_letters_every_kind_of_bad_line() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let good = r#"{"event_type":2,"person":null,"auction":null,"bid":{"auction":1,"bidder":2,"price":3,"channel":"c","url":"u","dateTime":"2026-01-01 00:00:00.000","extra":""}}"#;
        writeln!(f, "{good}").unwrap();
        writeln!(f, "{{not json").unwrap();
        writeln!(f, r#"{{"event_type":9,"bid":null}}"#).unwrap();
        writeln!(f, "{}", good.replace("2026-01-01", "2026-02-30")).unwrap();
        writeln!(f).unwrap();
        f.write_all(b"{\"event_type\":\xff}\n").unwrap();
        writeln!(
            f,
            "{}",
            good.replace(
                "\"extra\":\"\"",
                &format!("\"extra\":\"{}\"", "x".repeat(600))
            )
        )
        .unwrap();
        write!(f, "{good}").unwrap(); // no trailing newline
        f.flush().unwrap();

        let out = read_all(f.path(), 0, 1, 512);
        assert_eq!(out.events.len(), 2);
        let got: Vec<(u64, Reason)> = out
            .dead
            .iter()
            .map(|d| match d.origin {
                Origin::File { line, .. } => (line, d.reason),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (2, Reason::MalformedJson),
                (3, Reason::InvalidEvent),
                (4, Reason::InvalidEvent),
                (6, Reason::InvalidUtf8),
                (7, Reason::TooLarge),
            ]
        );
        assert!(out.dead[4].raw.starts_with("{\"event_type\":2"));
    }

    #[test]
    fn workers_share_blocks_round_robin() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let total = 3 * BLOCK_LINES + 5;
        for i in 0..total {
            writeln!(f, r#"{{"event_type":2,"bid":{{"auction":{i},"bidder":2,"price":3,"channel":"c","url":"u","dateTime":{i},"extra":""}}}}"#).unwrap();
        }
        f.flush().unwrap();
        let a = read_all(f.path(), 0, 2, 1024);
        let b = read_all(f.path(), 1, 2, 1024);
        assert_eq!(a.events.len() as u64, 2 * BLOCK_LINES);
        assert_eq!(b.events.len() as u64, BLOCK_LINES + 5);
        assert_eq!(b.events[0].event_time(), BLOCK_LINES);
    }
}
