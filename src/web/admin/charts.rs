//! Server-rendered SVG bar charts for the dashboard: the geometry is computed here and drawn by the template
//! (so every label goes through the template's escaping). No JavaScript: each bar carries a `<title>` with
//! its day and number, which browsers show on hover, and the totals and peaks are printed beside the chart.

use serde::Serialize;
use time::{Duration, OffsetDateTime};

use crate::admin::DaySeries;

const WIDTH: f64 = 600.0;
const HEIGHT: f64 = 180.0;
/// Room under the plot for day labels, and left of it for the scale.
const BOTTOM: f64 = 22.0;
const LEFT: f64 = 34.0;
const TOP: f64 = 8.0;

#[derive(Debug, Serialize)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    /// CSS class of the series (colour).
    pub class: &'static str,
    /// Hover text, e.g. "Nov 24: 12 sign-ins".
    pub title: String,
}

#[derive(Debug, Serialize)]
pub struct Tick {
    pub x: f64,
    pub y: f64,
    pub label: String,
    /// SVG `text-anchor`.
    pub anchor: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Legend {
    pub name: &'static str,
    pub class: &'static str,
    pub total: i64,
    pub peak: i64,
}

#[derive(Debug, Serialize)]
pub struct BarChart {
    pub width: f64,
    pub height: f64,
    pub plot_left: f64,
    pub plot_right: f64,
    pub baseline: f64,
    pub bars: Vec<Bar>,
    pub x_ticks: Vec<Tick>,
    pub y_ticks: Vec<Tick>,
    pub legend: Vec<Legend>,
    /// One sentence for screen readers: what the chart shows and its totals.
    pub summary: String,
}

/// Bars per day, the series side by side, from `first_day` on. `classes` colour the series in order.
pub fn bar_chart(first_day: OffsetDateTime, series: &[(&DaySeries, &'static str)]) -> BarChart {
    let days = series.iter().map(|(s, _)| s.values.len()).max().unwrap_or(0).max(1);
    let peak = series.iter().flat_map(|(s, _)| s.values.iter().copied()).max().unwrap_or(0);
    let scale_max = nice_ceiling(peak);
    let plot_width = WIDTH - LEFT;
    let plot_height = HEIGHT - BOTTOM - TOP;
    let slot = plot_width / days as f64;
    let gap = (slot * 0.2).max(1.0);
    let bar_width = ((slot - gap) / series.len().max(1) as f64).max(1.0);
    let baseline = HEIGHT - BOTTOM;

    let mut bars = Vec::new();
    for (index, (s, class)) in series.iter().enumerate() {
        let unit = s.name.to_lowercase();
        for (day, value) in s.values.iter().enumerate() {
            let height = if scale_max == 0 { 0.0 } else { plot_height * (*value as f64) / (scale_max as f64) };
            // Days with nothing still get a sliver, so the hover text is reachable and the zero is visible.
            let height = height.max(1.0);
            let x = LEFT + day as f64 * slot + gap / 2.0 + index as f64 * bar_width;
            let date = day_label(first_day + Duration::days(day as i64));
            bars.push(Bar {
                x: round(x),
                y: round(baseline - height),
                width: round(bar_width),
                height: round(height),
                class,
                title: format!("{date}: {value} {unit}"),
            });
        }
    }
    // A label every week and one for the last day (today), skipping a weekly label too close to it; the last
    // label is drawn right-aligned (see `anchor`) so it stays inside the chart.
    let x_ticks = (0..days)
        .filter(|day| *day == days - 1 || (day % 7 == 0 && days - 1 - day >= 4))
        .map(|day| Tick {
            x: if day == days - 1 { WIDTH } else { round(LEFT + day as f64 * slot + slot / 2.0) },
            y: HEIGHT - 6.0,
            label: day_label(first_day + Duration::days(day as i64)),
            anchor: if day == days - 1 { "end" } else { "middle" },
        })
        .collect();
    // A middle line only where it falls on a whole number.
    let middle = (scale_max % 2 == 0).then_some(scale_max / 2);
    let y_ticks = [Some(0), middle, Some(scale_max)]
        .into_iter()
        .flatten()
        .map(|value| Tick {
            x: LEFT - 6.0,
            y: round(baseline - if scale_max == 0 { 0.0 } else { plot_height * value as f64 / scale_max as f64 }),
            label: value.to_string(),
            anchor: "end",
        })
        .collect();
    let legend: Vec<Legend> = series
        .iter()
        .map(|(s, class)| Legend {
            name: s.name,
            class,
            total: s.total(),
            peak: s.values.iter().copied().max().unwrap_or(0),
        })
        .collect();
    let summary = format!(
        "Per day over the last {days} days: {}.",
        legend.iter().map(|l| format!("{} {} in all", l.total, l.name.to_lowercase())).collect::<Vec<_>>().join(", ")
    );
    BarChart {
        width: WIDTH,
        height: HEIGHT,
        plot_left: LEFT,
        plot_right: WIDTH,
        baseline,
        bars,
        x_ticks,
        y_ticks,
        legend,
        summary,
    }
}

/// The smallest "round" number (1, 2, 5 times a power of ten) at or above `value`; 0 stays 0... except that
/// an empty chart still gets a scale of 1 so it draws.
fn nice_ceiling(value: i64) -> i64 {
    if value <= 1 {
        return 1;
    }
    let mut magnitude = 1;
    while magnitude * 10 < value {
        magnitude *= 10;
    }
    [1, 2, 5, 10].into_iter().map(|m| m * magnitude).find(|candidate| *candidate >= value).unwrap_or(value)
}

fn day_label(day: OffsetDateTime) -> String {
    format!("{} {}", short_month(day.month()), day.day())
}

fn short_month(month: time::Month) -> &'static str {
    use time::Month::*;
    match month {
        January => "Jan",
        February => "Feb",
        March => "Mar",
        April => "Apr",
        May => "May",
        June => "Jun",
        July => "Jul",
        August => "Aug",
        September => "Sep",
        October => "Oct",
        November => "Nov",
        December => "Dec",
    }
}

fn round(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(name: &'static str, values: Vec<i64>) -> DaySeries {
        DaySeries { name, values }
    }

    #[test]
    fn bars_scale_to_a_round_maximum_and_carry_their_numbers() {
        let first = time::macros::datetime!(2026-10-26 0:00 UTC);
        let mut values = vec![0; 30];
        values[29] = 37;
        values[0] = 10;
        let ok = series("Sign-ins", values);
        let failed = series("Failed sign-ins", vec![1; 30]);
        let chart = bar_chart(first, &[(&ok, "ok"), (&failed, "bad")]);
        assert_eq!(chart.bars.len(), 60);
        assert_eq!(chart.y_ticks.last().unwrap().label, "50", "37 rounds up to a scale of 50");
        let last = &chart.bars[29];
        assert_eq!(last.title, "Nov 24: 37 sign-ins");
        let first_bar = &chart.bars[0];
        assert!(last.height > first_bar.height * 3.0, "{} vs {}", last.height, first_bar.height);
        assert!(chart.bars.iter().all(|b| b.x >= LEFT && b.x + b.width <= WIDTH + 0.1 && b.y >= TOP - 0.1));
        assert_eq!(chart.legend[0].total, 47);
        assert_eq!(chart.legend[1].peak, 1);
        assert!(chart.summary.contains("47 sign-ins in all"), "{}", chart.summary);
    }

    #[test]
    fn an_empty_chart_still_draws() {
        let empty = series("New users", vec![0; 30]);
        let chart = bar_chart(time::macros::datetime!(2026-01-01 0:00 UTC), &[(&empty, "new")]);
        assert!(chart.bars.iter().all(|b| b.height == 1.0));
        assert_eq!(chart.y_ticks.last().unwrap().label, "1");
    }

    #[test]
    fn round_scales() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(3), 5);
        assert_eq!(nice_ceiling(10), 10);
        assert_eq!(nice_ceiling(11), 20);
        assert_eq!(nice_ceiling(501), 1000);
    }
}
