//! The `file:PATH` source: one record per line (JSON, or CSV after a header row), split across
//! workers in round-robin blocks.
//!
//! Every worker scans the whole file but decodes only its own blocks of [`BLOCK_LINES`] lines
//! (block `b` belongs to worker `b mod peers`), so all workers move through event time together
//! and none holds the global watermark back while the others' windows pile up. Standard input
//! (`file:-`) can be read only once, so worker 0 reads all of it. A CSV file's first line is its
//! header: every worker reads it, none takes it for a record.
//!
//! A line that is not a record of the pipeline's type — bad syntax, wrong types, missing fields,
//! a bad timestamp, invalid UTF-8, or longer than the size cap — becomes a dead letter with its
//! file and line; the run goes on. Blank lines are skipped.
//!
//! **Checkpoints.** A worker's cut is its next line and, per checkpoint interval, where the
//! records it read with event times in it began. A restore — at any worker count — gives each
//! new worker every old worker's cut: it starts at the earliest place any old worker must read
//! again, and for each line asks that line's old owner whether it was read before the
//! checkpoint (then only its records at or after the checkpoint are taken again, and no dead
//! letter) or not (everything is taken). Until the reader has passed them, those facts are part
//! of its own cuts, so a checkpoint taken during the replay restores correctly too.

use super::format::Decoder;
use super::{Ingest, InputFormat, ReadStatus, Reader, SourceError};
use crate::deadletter::Origin;
use crate::record::{Format, Record};
use crate::time::EventTime;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::io::{Seek, SeekFrom};
use std::path::Path;
use std::path::PathBuf;
use std::time::Instant;

/// Lines per round-robin block.
pub const BLOCK_LINES: u64 = 1024;

/// Default cap on one record's size.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1 << 20;

/// Where a file reader is: the next line's number and byte offset.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FilePosition {
    /// 0-based line number.
    pub line: u64,
    /// Byte offset of the line's start.
    pub offset: u64,
}

/// A file reader's cut at a checkpoint: where it was, and where the records it had read with
/// event times at or after each checkpoint interval began.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct FileCut {
    /// The next line to read.
    at: FilePosition,
    /// For records already read: interval start `b` → the first position of a record with an
    /// event time in `[b, b + interval)` (only intervals a checkpoint may still need).
    read_ahead: Vec<(EventTime, FilePosition)>,
    /// The interval the starts are multiples of.
    interval: EventTime,
    /// Lines past `at` that an earlier execution read before the checkpoint it left off at
    /// (the reader resumed from it and has not passed them yet).
    replay: Vec<ReadBefore>,
}

/// Lines an earlier execution read before checkpoint `checkpoint`: with its split of `peers`
/// workers, line `l` had been read iff `l < until[(l / BLOCK_LINES) % peers]`. Its records
/// below the checkpoint (and its dead letters) are in the checkpoint; those at or after it are
/// read again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct ReadBefore {
    checkpoint: EventTime,
    peers: u64,
    until: Vec<u64>,
}

impl ReadBefore {
    fn covers(&self, line: u64) -> bool {
        let owner = ((line / BLOCK_LINES) % self.peers.max(1)) as usize;
        self.until.get(owner).is_some_and(|&until| line < until)
    }

    /// The first line past everything it covers.
    fn end(&self) -> u64 {
        self.until.iter().copied().max().unwrap_or(0)
    }
}

/// One worker's reader of a file of records.
pub struct FileReader<R> {
    input: BufReader<Box<dyn Read + Send>>,
    /// The file (`None` for stdin, which cannot be read again).
    source: Option<PathBuf>,
    path: String,
    /// Byte offset of the next line.
    offset: u64,
    /// Records read, by event-time interval: their first position (for checkpoints).
    read_ahead: BTreeMap<EventTime, FilePosition>,
    /// The checkpoint interval the read-ahead is kept in (0: not tracked).
    interval: EventTime,
    /// After a resume: the lines earlier executions read before their checkpoints, oldest
    /// first; a line's newest covering entry says which of its records are read again.
    replay: Vec<ReadBefore>,
    index: u64,
    peers: u64,
    max_record_bytes: usize,
    decoder: Decoder<R>,
    /// Lines consumed so far (the next line's 0-based index).
    line: u64,
    buf: Vec<u8>,
    done: bool,
}

/// One line as read: its bytes (up to the cap) and whether it was longer.
struct Line {
    oversized: bool,
}

impl<R: Record> FileReader<R> {
    /// Opens worker `index` of `peers`' share of `path` (`-` is standard input, read by worker 0).
    pub fn open(
        path: &Path,
        index: usize,
        peers: usize,
        format: &InputFormat,
    ) -> Result<Self, SourceError> {
        let label = path.display().to_string();
        let source = (label != "-").then(|| path.to_path_buf());
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
            source,
            path: label,
            offset: 0,
            read_ahead: BTreeMap::new(),
            interval: 0,
            replay: Vec::new(),
            index,
            peers,
            max_record_bytes: format.max_record_bytes,
            decoder: format.decoder(),
            line: 0,
            buf: Vec::new(),
            done: false,
        })
    }

    fn mine(&self, line: u64) -> bool {
        (line / BLOCK_LINES) % self.peers == self.index
    }

    /// Whether line `line` is the CSV header (read by every worker, decoded by none).
    fn is_header(&self, line: u64) -> bool {
        line == 0 && self.decoder.format() == Format::Csv
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
            self.offset += consumed as u64;
            if ends {
                return Ok(Some(Line { oversized }));
            }
        }
    }

    fn parse(&self, line_no: u64, line: &Line, out: &mut Ingest<R>) {
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
        self.decoder
            .decode(bytes, line.oversized, self.max_record_bytes, origin, out);
    }
}

impl<R: Record> FileReader<R> {
    /// Notes where a record just read began (for checkpoints), and, while replaying after a
    /// resume, drops what was read before the checkpoint: records below it and dead letters
    /// (both already in the checkpoint's outputs).
    fn track(&mut self, line: u64, at: FilePosition, before: (usize, usize), out: &mut Ingest<R>) {
        let replaying = self
            .replay
            .iter()
            .rev()
            .find(|r| r.covers(line))
            .map(|r| r.checkpoint);
        if replaying.is_some() {
            out.dead.truncate(before.1);
        }
        let Some(record) = out.records.get(before.0) else {
            return;
        };
        let t = record.event_time();
        if let Some(c) = replaying {
            if t < c {
                out.records.truncate(before.0);
                return;
            }
        }
        if self.interval > 0 {
            let bucket = t - t % self.interval;
            self.read_ahead.entry(bucket).or_insert(at);
        }
    }
}

impl<R: Record> Reader<R> for FileReader<R> {
    fn read(
        &mut self,
        _now: Instant,
        max: usize,
        out: &mut Ingest<R>,
    ) -> Result<ReadStatus, SourceError> {
        if self.done {
            return Ok(ReadStatus::Done);
        }
        let mut taken = 0;
        while taken < max {
            let line_no = self.line;
            let at = FilePosition {
                line: line_no,
                offset: self.offset,
            };
            let header = self.is_header(line_no);
            let keep = header || self.mine(line_no);
            let next = self.next_line(keep).map_err(|source| SourceError::Io {
                path: self.path.clone(),
                source,
            })?;
            let Some(line) = next else {
                self.done = true;
                return Ok(ReadStatus::Done);
            };
            self.line += 1;
            if !self.replay.is_empty() && self.line.is_multiple_of(BLOCK_LINES) {
                // Entries the reader has passed are done with.
                let line = self.line;
                self.replay.retain(|r| r.end() > line);
            }
            if header {
                let text = self.buf.strip_suffix(b"\r").unwrap_or(&self.buf).to_vec();
                self.decoder.set_header_line(&text);
            } else if keep {
                let before = (out.records.len(), out.dead.len());
                self.parse(line_no, &line, out);
                taken += 1;
                self.track(line_no, at, before, out);
            }
        }
        Ok(ReadStatus::More)
    }

    fn checkpoints_every(&mut self, interval: EventTime) {
        self.interval = interval;
    }

    fn cut(&self, interval: EventTime) -> Option<Vec<u8>> {
        let cut = FileCut {
            at: FilePosition {
                line: self.line,
                offset: self.offset,
            },
            read_ahead: self.read_ahead.iter().map(|(b, p)| (*b, *p)).collect(),
            interval,
            replay: self.replay.clone(),
        };
        bincode::serialize(&cut).ok()
    }

    fn on_watermark(&mut self, watermark: EventTime) {
        if self.interval == 0 {
            return;
        }
        // Checkpoints to come are above the watermark: intervals below it are never needed.
        let keep = watermark - watermark % self.interval;
        self.read_ahead = self.read_ahead.split_off(&keep);
    }

    fn resume(
        &mut self,
        c: EventTime,
        cuts: &[Vec<u8>],
        _same_split: Option<usize>,
    ) -> Result<(), SourceError> {
        let Some(path) = self.source.clone() else {
            return Err(SourceError::Unresumable(
                "standard input cannot be read again: a run from file:- cannot resume from a checkpoint".into(),
            ));
        };
        // Every old worker's cut: at any worker count, this worker reads its own blocks again
        // from the earliest place any old worker has to start, and each line's old owner's cut
        // says what of it was read before.
        let cuts: Vec<FileCut> = cuts
            .iter()
            .map(|bytes| bincode::deserialize(bytes).ok())
            .collect::<Option<_>>()
            .filter(|cuts: &Vec<FileCut>| !cuts.is_empty())
            .ok_or_else(|| {
                SourceError::Unresumable(format!(
                    "the checkpoint lacks a worker's cut of {}",
                    path.display()
                ))
            })?;
        let interval = cuts[0].interval.max(1);
        // Where each old worker must start again: its first record read at or after `c`, or
        // its cut.
        let from = cuts
            .iter()
            .map(|cut| {
                cut.read_ahead
                    .iter()
                    .filter(|(b, _)| *b >= c - c % interval)
                    .map(|(_, p)| *p)
                    .min()
                    .unwrap_or(cut.at)
                    .min(cut.at)
            })
            .min()
            .unwrap_or_default();
        let mut replay: Vec<ReadBefore> = Vec::new();
        for earlier in cuts.iter().flat_map(|cut| cut.replay.iter()) {
            if !replay.contains(earlier) {
                replay.push(earlier.clone());
            }
        }
        replay.sort_by_key(|r| r.checkpoint);
        replay.push(ReadBefore {
            checkpoint: c,
            peers: cuts.len() as u64,
            until: cuts.iter().map(|cut| cut.at.line).collect(),
        });
        let io = |source| SourceError::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = File::open(&path).map_err(io)?;
        if from.line > 0 && self.decoder.format() == Format::Csv {
            // The header names the columns: read it again.
            let mut header = Vec::new();
            BufReader::new(&mut file)
                .read_until(b'\n', &mut header)
                .map_err(io)?;
            let header = header.strip_suffix(b"\n").unwrap_or(&header);
            self.decoder
                .set_header_line(header.strip_suffix(b"\r").unwrap_or(header));
        }
        file.seek(SeekFrom::Start(from.offset)).map_err(io)?;
        self.input = BufReader::with_capacity(1 << 20, Box::new(file));
        self.line = from.line;
        self.offset = from.offset;
        self.replay = replay;
        self.interval = interval;
        // Records this worker reads again are tracked again as they come.
        self.read_ahead = BTreeMap::new();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::deadletter::Reason;
    use crate::record::testing::Reading;
    use std::io::Write;

    fn read_all(
        path: &Path,
        index: usize,
        peers: usize,
        format: Format,
        cap: usize,
    ) -> Ingest<Reading> {
        let input = InputFormat {
            format,
            csv_header: None,
            max_record_bytes: cap,
        };
        let mut reader = FileReader::open(path, index, peers, &input).unwrap();
        let mut out = Ingest::default();
        while reader.read(Instant::now(), 7, &mut out).unwrap() != ReadStatus::Done {}
        out
    }

    fn reasons(out: &Ingest<Reading>) -> Vec<(u64, Reason)> {
        out.dead
            .iter()
            .map(|d| match d.origin {
                Origin::File { line, .. } => (line, d.reason),
                _ => unreachable!(),
            })
            .collect()
    }

    #[test]
    fn dead_letters_every_kind_of_bad_line() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let good = r#"{"device":"pump","time":1000,"value":2.5}"#;
        writeln!(f, "{good}").unwrap();
        writeln!(f, "{{not json").unwrap();
        writeln!(f, r#"{{"device":"pump"}}"#).unwrap();
        writeln!(f, "{}", good.replace("1000", "\"soon\"")).unwrap();
        writeln!(f).unwrap();
        f.write_all(b"{\"device\":\"\xff\"}\n").unwrap();
        writeln!(f, "{}", good.replace("pump", &"x".repeat(600))).unwrap();
        write!(f, "{good}").unwrap(); // no trailing newline
        f.flush().unwrap();

        let out = read_all(f.path(), 0, 1, Format::Json, 512);
        assert_eq!(out.records.len(), 2);
        assert_eq!(
            reasons(&out),
            vec![
                (2, Reason::MalformedJson),
                (3, Reason::InvalidEvent),
                (4, Reason::InvalidEvent),
                (6, Reason::InvalidUtf8),
                (7, Reason::TooLarge),
            ]
        );
        assert!(out.dead[4].raw.starts_with("{\"device\":\"xxx"));
    }

    #[test]
    fn csv_files_start_with_a_header_every_worker_reads() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "time,device,value").unwrap();
        let total = 2 * BLOCK_LINES + 3;
        for i in 1..total {
            writeln!(f, "{i},dev-{},{}.5", i % 3, i).unwrap();
        }
        writeln!(f, "x,y").unwrap();
        f.flush().unwrap();
        let a = read_all(f.path(), 0, 2, Format::Csv, 1024);
        let b = read_all(f.path(), 1, 2, Format::Csv, 1024);
        // Worker 0's first block starts after the header.
        assert_eq!(a.records.len() as u64, BLOCK_LINES - 1 + 3);
        assert_eq!(b.records.len() as u64, BLOCK_LINES);
        assert_eq!(
            a.records[0],
            Reading {
                device: "dev-1".into(),
                time: 1,
                value: 1.5
            }
        );
        assert_eq!(b.records[0].time, BLOCK_LINES);
        assert_eq!(reasons(&a), vec![(total + 1, Reason::MalformedCsv)]);
    }

    /// Worker `index` of `peers` reads up to line `until` (or the end); returns the records and
    /// its cut.
    fn read_until(
        path: &Path,
        (index, peers): (usize, usize),
        resume: Option<(EventTime, &[Vec<u8>])>,
        until: u64,
    ) -> (Vec<Reading>, Vec<u8>) {
        let input = InputFormat {
            format: Format::Json,
            csv_header: None,
            max_record_bytes: 1024,
        };
        let mut reader = FileReader::<Reading>::open(path, index, peers, &input).unwrap();
        reader.checkpoints_every(1000);
        if let Some((c, cuts)) = resume {
            reader.resume(c, cuts, None).unwrap();
        }
        let mut out = Ingest::default();
        while reader.line < until
            && reader.read(Instant::now(), 1, &mut out).unwrap() == ReadStatus::More
        {}
        let cut = reader.cut(1000).unwrap();
        (out.records, cut)
    }

    #[test]
    fn a_file_resumes_at_any_worker_count_even_mid_replay() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let total = 12 * BLOCK_LINES;
        // 10 ms apart, out of order by up to 3 s.
        let time = |i: u64| i * 10 + (i * 7919 % 300) * 10;
        for i in 0..total {
            writeln!(f, r#"{{"device":"d{i}","time":{},"value":0}}"#, time(i)).unwrap();
        }
        f.flush().unwrap();
        let mut seen: Vec<String> = Vec::new();
        // Execution 1, two workers, checkpoint 40 s: records below it are in the checkpoint.
        let c1 = 40_000;
        let mut cuts1 = Vec::new();
        for (index, until) in [(0, 4100), (1, 4300)] {
            let (records, cut) = read_until(f.path(), (index, 2), None, until);
            seen.extend(
                records
                    .into_iter()
                    .filter(|r| r.time < c1)
                    .map(|r| r.device),
            );
            cuts1.push(cut);
        }
        // Execution 2, three workers, resumed at 40 s and cut again at 45 s, while the replay of
        // what execution 1 had read is not over for all of them.
        let c2 = 45_000;
        let mut cuts2 = Vec::new();
        for (index, until) in [(0, 3800), (1, 4700), (2, 3950)] {
            let (records, cut) = read_until(f.path(), (index, 3), Some((c1, &cuts1)), until);
            assert!(
                records.iter().all(|r| r.time >= c1),
                "nothing below 40 s again"
            );
            seen.extend(
                records
                    .into_iter()
                    .filter(|r| r.time < c2)
                    .map(|r| r.device),
            );
            cuts2.push(cut);
        }
        // Execution 3, one worker, to the end.
        let (records, _) = read_until(f.path(), (0, 1), Some((c2, &cuts2)), u64::MAX);
        seen.extend(records.into_iter().map(|r| r.device));
        seen.sort();
        let mut all: Vec<String> = (0..total).map(|i| format!("d{i}")).collect();
        all.sort();
        assert_eq!(seen.len(), all.len(), "every record once");
        assert!(seen == all);
    }

    #[test]
    fn workers_share_blocks_round_robin() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        let total = 3 * BLOCK_LINES + 5;
        for i in 0..total {
            writeln!(f, r#"{{"device":"d","time":{i},"value":0}}"#).unwrap();
        }
        f.flush().unwrap();
        let a = read_all(f.path(), 0, 2, Format::Json, 1024);
        let b = read_all(f.path(), 1, 2, Format::Json, 1024);
        assert_eq!(a.records.len() as u64, 2 * BLOCK_LINES);
        assert_eq!(b.records.len() as u64, BLOCK_LINES + 5);
        assert_eq!(b.records[0].event_time(), BLOCK_LINES);
    }
}
