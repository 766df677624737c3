//! Report charts, drawn as SVG by `plotters` (SVG backend only). Labels pass through the
//! backend's XML escaping; callers still pass only component names, days and breach ids.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Colours of the priorities, most urgent first (the HTML legend uses the same).
pub(crate) const PRIORITY_COLOURS: [RGBColor; 5] = [
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0xe3, 0xc0, 0x00),
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x7f, 0x7f, 0x7f),
];
const P50: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const P95: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const P99: RGBColor = RGBColor(0x94, 0x67, 0xbd);
const OBJECTIVE: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const WAITING: RGBColor = RGBColor(0xaa, 0xaa, 0xaa);
const CLOCK: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const LATE: RGBColor = RGBColor(0xd6, 0x27, 0x28);

fn short(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_owned()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

fn finish(svg: String, error: Option<String>) -> String {
    match error {
        None => svg,
        Some(e) => format!(
            "<p class=\"chart-error\">chart not drawn: {}</p>",
            crate::report::escape_html(&e)
        ),
    }
}

/// The pixel at fractions (`fx` from the left, `fy` from the bottom) of the plotting area.
fn at_fraction<DB: DrawingBackend, CT: CoordTranslate>(
    chart: &ChartContext<'_, DB, CT>,
    fx: f64,
    fy: f64,
) -> (i32, i32) {
    let (xs, ys) = chart.plotting_area().get_pixel_range();
    let x = xs.start + ((xs.end - xs.start) as f64 * fx).round() as i32;
    let y = ys.end - ((ys.end - ys.start) as f64 * fy).round() as i32;
    (x, y)
}

/// Stacked bars: alerts per day by priority. `days`: (label, counts per priority).
pub(crate) fn alerts_per_day(days: &[(String, [u64; 5])]) -> String {
    let mut svg = String::new();
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::with_string(&mut svg, (900, 320)).into_drawing_area();
        root.fill(&WHITE)?;
        let max = days
            .iter()
            .map(|(_, c)| c.iter().sum::<u64>())
            .max()
            .unwrap_or(0)
            .max(1);
        let n = days.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption("Alerts per day by priority", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d(0f64..n as f64, 0f64..(max as f64 * 1.1))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("alerts")
            .draw()?;
        // One day label under every bar (every k-th when there are many days).
        let every = days.len().div_ceil(14).max(1);
        for (i, (day, _)) in days.iter().enumerate().filter(|(i, _)| i % every == 0) {
            let (x, y) = at_fraction(&chart, (i as f64 + 0.5) / n as f64, 0.0);
            root.draw(&Text::new(
                day.clone(),
                (x, y + 6),
                TextStyle::from(("sans-serif", 12).into_font())
                    .pos(Pos::new(HPos::Center, VPos::Top)),
            ))?;
        }
        for (i, (_, counts)) in days.iter().enumerate() {
            let mut base = 0f64;
            for (p, count) in counts.iter().enumerate() {
                if *count == 0 {
                    continue;
                }
                let top = base + *count as f64;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(i as f64 + 0.15, base), (i as f64 + 0.85, top)],
                    PRIORITY_COLOURS[p].filled(),
                )))?;
                base = top;
            }
        }
        root.present()?;
        Ok(())
    })()
    .err()
    .map(|e| e.to_string());
    finish(svg, result)
}

/// Grouped bars of p50/p95/p99 per component with the objective as a line.
pub(crate) fn latency_percentiles(
    title: &str,
    items: &[(String, u64, u64, u64)],
    objective_ms: u64,
) -> String {
    let mut svg = String::new();
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        let root = SVGBackend::with_string(&mut svg, (900, 320)).into_drawing_area();
        root.fill(&WHITE)?;
        let max = items
            .iter()
            .map(|(_, a, b, c)| *a.max(b).max(c))
            .max()
            .unwrap_or(0)
            .max(objective_ms) as f64
            * 1.15;
        let n = items.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..n as f64, 0f64..max)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .y_desc("milliseconds")
            .draw()?;
        for (i, (name, ..)) in items.iter().enumerate() {
            let (x, y) = at_fraction(&chart, (i as f64 + 0.5) / n as f64, 0.0);
            root.draw(&Text::new(
                short(name, 24),
                (x, y + 6),
                TextStyle::from(("sans-serif", 13).into_font())
                    .pos(Pos::new(HPos::Center, VPos::Top)),
            ))?;
        }
        for (i, (_, p50, p95, p99)) in items.iter().enumerate() {
            for (k, (value, colour)) in [(p50, P50), (p95, P95), (p99, P99)].iter().enumerate() {
                let left = i as f64 + 0.12 + k as f64 * 0.26;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(left, 0.0), (left + 0.24, **value as f64)],
                    colour.filled(),
                )))?;
            }
        }
        chart
            .draw_series(LineSeries::new(
                [(0.0, objective_ms as f64), (n as f64, objective_ms as f64)],
                OBJECTIVE.stroke_width(2),
            ))?
            .label(format!("objective {objective_ms} ms"))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], OBJECTIVE.stroke_width(2)));
        for (name, colour) in [("p50", P50), ("p95", P95), ("p99", P99)] {
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 15, y + 5)], colour.filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        root.present()?;
        Ok(())
    })()
    .err()
    .map(|e| e.to_string());
    finish(svg, result)
}

/// One breach on the timeline: label, detected, confirmed, deadline, notified (hours from
/// the report's start), and whether notification was (or is) late.
pub(crate) struct TimelineBar {
    pub(crate) label: String,
    pub(crate) detected: f64,
    pub(crate) confirmed: Option<f64>,
    pub(crate) deadline: Option<f64>,
    pub(crate) end: f64,
    pub(crate) late: bool,
}

/// Breach timelines: grey from first signal to confirmation, blue (red when late) from
/// confirmation to notification (or now), a black tick at the 72-hour deadline.
pub(crate) fn breach_timelines(bars: &[TimelineBar], span_hours: f64) -> String {
    let mut svg = String::new();
    let result = (|| -> Result<(), Box<dyn std::error::Error>> {
        let height = 80 + 28 * bars.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (900, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let max_x = bars
            .iter()
            .map(|b| b.end.max(b.deadline.unwrap_or(0.0)))
            .fold(span_hours, f64::max)
            .max(1.0);
        let n = bars.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Breach timelines (hours from the period start)",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(110)
            .build_cartesian_2d(0f64..max_x * 1.02, 0f64..n as f64)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc("hours")
            .draw()?;
        for (i, bar) in bars.iter().enumerate() {
            let (x, y) = at_fraction(&chart, 0.0, (i as f64 + 0.5) / n as f64);
            root.draw(&Text::new(
                short(&bar.label, 14),
                (x - 6, y),
                TextStyle::from(("sans-serif", 12).into_font())
                    .pos(Pos::new(HPos::Right, VPos::Center)),
            ))?;
        }
        for (i, bar) in bars.iter().enumerate() {
            let (lo, hi) = (i as f64 + 0.2, i as f64 + 0.8);
            let confirmed = bar.confirmed.unwrap_or(bar.end);
            chart.draw_series(std::iter::once(Rectangle::new(
                [(bar.detected, lo), (confirmed.max(bar.detected + 0.01), hi)],
                WAITING.filled(),
            )))?;
            if let Some(c) = bar.confirmed {
                let colour = if bar.late { LATE } else { CLOCK };
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(c, lo), (bar.end.max(c + 0.01), hi)],
                    colour.filled(),
                )))?;
            }
            if let Some(d) = bar.deadline {
                chart.draw_series(LineSeries::new(
                    [(d, lo - 0.1), (d, hi + 0.1)],
                    BLACK.stroke_width(3),
                ))?;
            }
        }
        root.present()?;
        Ok(())
    })()
    .err()
    .map(|e| e.to_string());
    finish(svg, result)
}
