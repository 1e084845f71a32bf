//! The README against the binary: its exit-code table is the one the code uses, every flag of
//! `sluice run --help` (and every help heading) is documented, and its sample report has the
//! lines a run of the sample command prints (numbers aside).

mod common;

use common::*;

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap()
}

/// The lines of `text` from the one after `start` up to (without) the first that `stop` says
/// ends the block.
fn block_after<'a>(text: &'a str, start: &str, stop: impl Fn(&str) -> bool) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| !l.starts_with(start))
        .skip(1)
        .skip_while(|l| l.trim().is_empty())
        .take_while(|l| !stop(l))
        .collect()
}

#[test]
fn the_exit_code_table_is_the_codes() {
    let text = readme();
    let rows: Vec<(u8, String)> = block_after(&text, "### Exit codes", |l| !l.starts_with('|'))
        .into_iter()
        .skip(2) // header and separator
        .map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').split(" | ").map(str::trim).collect();
            (cells[0].parse().unwrap(), cells[1].to_string())
        })
        .collect();
    let code: Vec<(u8, String)> = sluice::cli::exit::TABLE
        .iter()
        .map(|(c, m)| (*c, m.to_string()))
        .collect();
    assert_eq!(rows, code);
}

#[test]
fn every_run_flag_and_heading_is_documented() {
    let help = sluice(&["run", "--help"]);
    assert!(help.status.success());
    let help = String::from_utf8(help.stdout).unwrap();
    let text = readme();
    let mut flags = 0;
    for line in help.lines() {
        // Flag lines start with whitespace and `-`; the first `--name` is the flag.
        let Some(flag) = line
            .split_whitespace()
            .find(|w| w.starts_with("--"))
            .filter(|_| line.trim_start().starts_with('-'))
        else {
            continue;
        };
        let flag = flag.trim_end_matches(',');
        flags += 1;
        assert!(
            text.contains(&format!("`{flag}")) || text.contains(&format!(", {flag}")),
            "{flag} is not in the README"
        );
    }
    assert!(flags > 30, "{flags} flags found in\n{help}");
    let plain = text.replace('`', "");
    for heading in help
        .lines()
        .filter(|l| !l.starts_with(' ') && l.ends_with(':'))
    {
        let name = heading.trim_end_matches(':');
        if ["Usage", "Arguments", "Options"].contains(&name) {
            continue;
        }
        assert!(
            plain.contains(&format!("**{name}**")),
            "help heading {name:?} is not a README heading"
        );
    }
}

/// A report line with its figures masked: numbers become `#`, durations and SI suffixes drop.
fn shape(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars
                .peek()
                .is_some_and(|c| c.is_ascii_digit() || *c == '.')
            {
                chars.next();
            }
            // A unit glued to the number (`14µs`, `2.53ms`, `4.00s`) is part of the figure.
            for unit in ["µs", "ms", "s"] {
                let rest: String = chars.clone().take(unit.chars().count()).collect();
                let after = chars.clone().nth(unit.chars().count());
                if rest == unit && after.is_none_or(|c| !c.is_alphanumeric()) {
                    for _ in 0..unit.chars().count() {
                        chars.next();
                    }
                    break;
                }
            }
            out.push('#');
            // `99.7 K` and `1.00 M` are one figure.
            let mut look = chars.clone();
            if look.next() == Some(' ')
                && look.next().is_some_and(|c| "KMG".contains(c))
                && look.next().is_none_or(|c| c == ' ' || c == ',')
            {
                chars.next();
                chars.next();
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn the_sample_report_is_what_the_sample_command_prints() {
    let text = readme();
    let intro = text
        .lines()
        .find(|l| l.starts_with("Every run ends with a report like this one"))
        .unwrap();
    let command = intro.split('`').nth(1).unwrap();
    let args: Vec<&str> = command
        .split_whitespace()
        .skip(1) // `sluice`
        .chain(["--progress", "off"])
        .collect();
    // The fenced block after the intro line.
    let sample: Vec<String> = text
        .lines()
        .skip_while(|l| *l != intro)
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .map(shape)
        .collect();
    let out = sluice(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed: Vec<String> = stderr(&out).lines().map(shape).collect();
    assert_eq!(printed, sample);
}

#[test]
fn masking_keeps_words_and_drops_figures() {
    assert_eq!(
        shape("p50 14µs p90 2.53ms max 4.00s (1200000 events) at 99.7 K events/s, 1.00 M"),
        "p# # p# # max # (# events) at # events/s, #"
    );
    assert_eq!(
        shape("on 2 worker(s): w0 49.8 K, w1 0"),
        "on # worker(s): w# #, w# #"
    );
}
