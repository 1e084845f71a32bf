//! The benchmark's plots, as SVG files a person can open in a browser: the latency CCDF of each
//! query and rate (log–log), all queries' CCDFs at one rate on one chart, a timeline per query
//! and rate (p50/p99/max latency per interval above, throughput and resident memory below), and
//! a throughput bar chart. Written with `plotters`' SVG backend.

use hdrhistogram::Histogram;
use plotters::prelude::*;
use sluice::metrics::timeline::TimelinePoint;
use std::path::Path;

type Result = std::result::Result<(), String>;

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

/// A line in the colour of series `i`, labelled in the legend.
fn labelled_line<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    i: usize,
    label: &str,
    points: impl IntoIterator<Item = (X::ValueType, Y::ValueType)>,
) -> Result
where
    DB: DrawingBackend + 'a,
    X: Ranged,
    Y: Ranged,
    X::ValueType: Clone + 'static,
    Y::ValueType: Clone + 'static,
{
    let color = PALETTE[i % PALETTE.len()];
    chart
        .draw_series(LineSeries::new(points, color.stroke_width(2)))
        .map_err(err)?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
    Ok(())
}

/// The legend box, top right.
fn legend<'a, DB, X, Y>(chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>) -> Result
where
    DB: DrawingBackend + 'a,
    X: Ranged,
    Y: Ranged,
{
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

/// One chart of CCDF curves, log–log.
pub fn ccdf(path: &Path, title: &str, curves: &[Curve]) -> Result {
    let points = curves.iter().flat_map(|(_, c)| c.iter());
    let (lo, hi) = points.fold((f64::MAX, 0.0f64), |(lo, hi), (x, _)| {
        (lo.min(*x), hi.max(*x))
    });
    if hi <= 0.0 {
        return Ok(());
    }
    let min_fraction = curves
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| p.1))
        .fold(1.0f64, f64::min)
        .max(1e-7);
    let root = SVGBackend::new(path, (900, 560)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(
            ((lo * 0.8).max(0.1)..hi * 1.25).log_scale(),
            (min_fraction * 0.5..1.0f64).log_scale(),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("processing latency (µs, log)")
        .y_desc("fraction of events ≥ latency (log)")
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .draw()
        .map_err(err)?;
    for (i, (label, curve)) in curves.iter().enumerate() {
        labelled_line(&mut chart, i, label, curve.iter().copied())?;
    }
    legend(&mut chart)?;
    root.present().map_err(err)
}

/// Latency percentiles per interval (top), throughput and RSS per interval (bottom).
pub fn timeline(path: &Path, title: &str, points: &[TimelinePoint]) -> Result {
    if points.is_empty() {
        return Ok(());
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
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..t_max, ((lo * 0.8).max(0.1)..hi * 1.25).log_scale())
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("seconds since the first read")
            .y_desc("latency per interval (µs, log)")
            .draw()
            .map_err(err)?;
        let series: [Percentile; 3] = [
            ("p50", |p| p.p50_us),
            ("p99", |p| p.p99_us),
            ("max", |p| p.max_us),
        ];
        for (i, (label, get)) in series.into_iter().enumerate() {
            let line = points.iter().filter_map(|p| Some((p.t_s, get(p)?)));
            labelled_line(&mut chart, i, label, line)?;
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
        .y_label_formatter(&|y| format!("{:.0}K", y / 1e3))
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
    root.present().map_err(err)
}

/// A bar per query: events/s per worker at saturation (median).
pub fn throughput(path: &Path, title: &str, bars: &[(String, f64)]) -> Result {
    if bars.is_empty() {
        return Ok(());
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
        .y_desc("events/s per worker (millions)")
        .y_label_formatter(&|y| format!("{:.1}", y / 1e6))
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
    root.present().map_err(err)
}
