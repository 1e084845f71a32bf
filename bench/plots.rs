//! The benchmark's plots, as SVG files a person can open in a browser: the latency CCDF of each
//! query and rate (log–log), all queries' CCDFs at one rate on one chart, a timeline per query
//! and rate (p50/p99/max latency per interval above, throughput and resident memory below), and
//! a throughput bar chart. Written with `plotters`' SVG backend.
//!
//! Readable at a glance: latency axes are labelled in time units (`250 µs`, `1 ms`, `2 s`) at
//! 1-2-5 steps, so labels sit near the curve even on a narrow range; the CCDF marks the p50,
//! p99 and p99.9 levels by name; the timeline draws max as a thin dashed line under p99 and
//! p50, each with markers, so a percentile equal to max stays visible.
//!
//! Each function returns whether it wrote its file: without data nothing is drawn, and nothing
//! should be linked.

use hdrhistogram::Histogram;
use plotters::coord::combinators::WithKeyPoints;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use sluice::metrics::timeline::TimelinePoint;
use std::path::Path;

/// Whether a plot was written (`false`: there was nothing to draw).
pub type Written = Result<bool, String>;

/// A labelled curve: (x, y) points.
pub type Curve = (String, Vec<(f64, f64)>);

/// A labelled way to read one percentile of a timeline point.
type Percentile = (&'static str, fn(&TimelinePoint) -> Option<f64>);

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
];

/// 1-2-5 steps (× powers of ten) from `lo` to `hi`: tick positions for a log axis that always
/// has labels inside a narrow range.
fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let mut ticks = Vec::new();
    let mut decade = 10f64.powf(lo.max(1e-9).log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let t = decade * m;
            if (lo..=hi).contains(&t) {
                ticks.push(t);
            }
        }
        decade *= 10.0;
    }
    ticks
}

/// A log axis over `lo..hi` with 1-2-5 key points.
fn log_axis(lo: f64, hi: f64) -> WithKeyPoints<LogCoord<f64>> {
    (lo..hi).log_scale().with_key_points(log_ticks(lo, hi))
}

/// A latency in µs as a tick label: `250 µs`, `1 ms`, `2.5 s`.
fn time_label(us: &f64) -> String {
    let (value, unit) = if *us >= 1e6 {
        (us / 1e6, "s")
    } else if *us >= 1e3 {
        (us / 1e3, "ms")
    } else {
        (*us, "µs")
    };
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} {unit}")
}

/// A fraction as a percentile tick label: `1` → `100 %`, `0.001` → `0.1 %`.
fn fraction_label(y: &f64) -> String {
    let text = format!("{:.4}", y * 100.0);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} %")
}

/// A line in the colour of series `i` with a marker at each point, labelled in the legend.
fn marked_line<'a, DB: DrawingBackend + 'a>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, WithKeyPoints<LogCoord<f64>>>>,
    i: usize,
    label: &str,
    points: Vec<(f64, f64)>,
) -> Result<(), String> {
    let color = PALETTE[i % PALETTE.len()];
    chart
        .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
        .map_err(err)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    chart
        .draw_series(
            points
                .into_iter()
                .map(|p| Circle::new(p, 3, color.filled())),
        )
        .map_err(err)?;
    Ok(())
}

/// The legend box, top right.
fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(err)
}

/// A latency histogram (ns) as CCDF points: (latency µs, fraction of events at or above it).
pub fn ccdf_points(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    let total = h.len() as f64;
    if total == 0.0 {
        return Vec::new();
    }
    let mut above = total;
    let mut points = Vec::new();
    for v in h.iter_recorded() {
        points.push((v.value_iterated_to() as f64 / 1000.0, above / total));
        above -= v.count_at_value() as f64;
    }
    points
}

/// One chart of CCDF curves, log–log, with the p50, p99 and p99.9 levels marked.
pub fn ccdf(path: &Path, title: &str, curves: &[Curve]) -> Written {
    let points = curves.iter().flat_map(|(_, c)| c.iter());
    let (lo, hi) = points.fold((f64::MAX, 0.0f64), |(lo, hi), (x, _)| {
        (lo.min(*x), hi.max(*x))
    });
    if hi <= 0.0 {
        return Ok(false);
    }
    let min_fraction = curves
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| p.1))
        .fold(1.0f64, f64::min)
        .max(1e-7);
    let (x_lo, x_hi) = ((lo * 0.8).max(0.1), hi * 1.25);
    let y_lo = min_fraction * 0.5;
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(80)
        .build_cartesian_2d(log_axis(x_lo, x_hi), log_axis(y_lo, 1.0))
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("processing latency (log scale)")
        .y_desc("events at or above it (log scale)")
        .x_label_formatter(&time_label)
        .y_label_formatter(&fraction_label)
        .draw()
        .map_err(err)?;
    // Where each percentile is read off: p50 at 50 % of events, p99 at 1 %, p99.9 at 0.1 %.
    for (name, level) in [("p50", 0.5), ("p99", 0.01), ("p99.9", 0.001)] {
        if level < y_lo {
            continue;
        }
        chart
            .draw_series(DashedLineSeries::new(
                [(x_lo, level), (x_hi, level)],
                6,
                4,
                PALETTE[8].stroke_width(1),
            ))
            .map_err(err)?;
        chart
            .draw_series([Text::new(
                name.to_string(),
                (x_lo * 1.05, level),
                ("sans-serif", 13).into_font().color(&PALETTE[8]),
            )])
            .map_err(err)?;
    }
    for (i, (label, curve)) in curves.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                curve.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(err)?
            .label(label)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    legend(&mut chart)?;
    root.present().map_err(err)?;
    Ok(true)
}

/// Latency percentiles per interval (top), throughput and RSS per interval (bottom).
pub fn timeline(path: &Path, title: &str, points: &[TimelinePoint]) -> Written {
    if points.is_empty() {
        return Ok(false);
    }
    let t_max = points.last().map_or(1.0, |p| p.t_s);
    let latencies = points
        .iter()
        .flat_map(|p| [p.p50_us, p.p99_us, p.max_us])
        .flatten();
    let (lo, hi) = latencies.fold((f64::MAX, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let root = SVGBackend::new(path, (900, 700)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root.titled(title, ("sans-serif", 20)).map_err(err)?;
    let (top, bottom) = root.split_vertically(420);
    if hi > 0.0 {
        let mut chart = ChartBuilder::on(&top)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..t_max, log_axis((lo * 0.8).max(0.1), hi * 1.25))
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the first read")
            .y_desc("latency per interval (log scale)")
            .y_label_formatter(&time_label)
            .draw()
            .map_err(err)?;
        let get = |read: fn(&TimelinePoint) -> Option<f64>| -> Vec<(f64, f64)> {
            points
                .iter()
                .filter_map(|p| Some((p.t_s, read(p)?)))
                .collect()
        };
        // Max first, thin and dashed, so p99 and p50 drawn over it stay visible where equal.
        let max_color = PALETTE[8];
        chart
            .draw_series(DashedLineSeries::new(
                get(|p| p.max_us),
                5,
                3,
                max_color.stroke_width(1),
            ))
            .map_err(err)?
            .label("max")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], max_color.stroke_width(1))
            });
        let series: [Percentile; 2] = [("p99", |p| p.p99_us), ("p50", |p| p.p50_us)];
        for (i, (label, read)) in series.into_iter().enumerate() {
            marked_line(&mut chart, i + 3, label, get(read))?;
        }
        legend(&mut chart)?;
    }
    let (left, right) = bottom.split_horizontally(450);
    let rate_max = points
        .iter()
        .map(|p| p.events_per_second)
        .fold(0.0, f64::max);
    let mut rate = ChartBuilder::on(&left)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..(rate_max * 1.1).max(1.0))
        .map_err(err)?;
    rate.configure_mesh()
        .x_desc("seconds")
        .y_desc("events/s settled")
        .y_label_formatter(&|y| sluice::metrics::si(*y))
        .draw()
        .map_err(err)?;
    rate.draw_series(LineSeries::new(
        points.iter().map(|p| (p.t_s, p.events_per_second)),
        PALETTE[2].stroke_width(2),
    ))
    .map_err(err)?;
    let rss: Vec<(f64, f64)> = points
        .iter()
        .filter_map(|p| Some((p.t_s, p.rss_mib?)))
        .collect();
    let rss_max = rss.iter().map(|p| p.1).fold(0.0, f64::max);
    let mut memory = ChartBuilder::on(&right)
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..t_max, 0.0..(rss_max * 1.2).max(1.0))
        .map_err(err)?;
    memory
        .configure_mesh()
        .x_desc("seconds")
        .y_desc("RSS (MiB)")
        .draw()
        .map_err(err)?;
    memory
        .draw_series(LineSeries::new(rss, PALETTE[4].stroke_width(2)))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(true)
}

/// A bar per query: events/s per worker at saturation (median).
pub fn throughput(path: &Path, title: &str, bars: &[(String, f64)]) -> Written {
    if bars.is_empty() {
        return Ok(false);
    }
    let top = bars.iter().map(|b| b.1).fold(0.0, f64::max) * 1.15;
    let root = SVGBackend::new(path, (900, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let labels: Vec<String> = bars.iter().map(|b| b.0.clone()).collect();
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..bars.len() as f64, 0.0..top.max(1.0))
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(bars.len() * 2 + 1)
        .x_label_formatter(&|x| {
            let i = x.floor() as usize;
            if (x - x.floor() - 0.5).abs() < 0.01 {
                labels.get(i).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        })
        .y_desc("events/s per worker")
        .y_label_formatter(&|y| sluice::metrics::si(*y))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(bars.iter().enumerate().map(|(i, (_, v))| {
            Rectangle::new(
                [(i as f64 + 0.15, 0.0), (i as f64 + 0.85, *v)],
                PALETTE[0].filled(),
            )
        }))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(true)
}
