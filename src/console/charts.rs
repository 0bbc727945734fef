//! Charts drawn on the server as inline SVG: no script, nothing from another host, and no
//! `style` attribute (the console's CSP has no `'unsafe-inline'`): colours and strokes are
//! SVG presentation attributes, sizes come from `console.css` (`.chart`). Each chart has a
//! `<title>` and an `aria-labelledby`; the pages also put the same figures in a table.
//!
//! Whatever the figures (none, one, all equal, negative, near `i64::MAX`, NaN), every
//! coordinate written is a finite number: [`Scale`] clamps, and [`n`] writes 0 for what
//! is not finite.

use maud::{html, Markup};

/// Series colours, in order (readable on white, distinct in greyscale order too).
pub const PALETTE: [&str; 6] = [
    "#1d4ed8", "#c2410c", "#15803d", "#7c3aed", "#b91c1c", "#0e7490",
];

/// The largest magnitude a chart draws; beyond it values are clamped (so that `hi - lo`
/// stays finite).
const LIMIT: f64 = 1e300;

/// A coordinate as SVG text: one decimal, 0 for anything not finite.
pub fn n(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.1}")
    } else {
        "0".into()
    }
}

/// A linear map from values (`lo..=hi`, "nice" round ends that hold zero) onto pixels
/// (`from..=to`; `to < from` for a vertical axis that grows upwards).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    pub lo: f64,
    pub hi: f64,
    pub step: f64,
    from: f64,
    to: f64,
}

/// A round step near `raw`: 1, 2 or 5 times a power of ten.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let norm = raw / magnitude;
    let m = if norm <= 1.0 {
        1.0
    } else if norm <= 2.0 {
        2.0
    } else if norm <= 5.0 {
        5.0
    } else {
        10.0
    };
    let step = m * magnitude;
    if step.is_finite() && step > 0.0 {
        step
    } else {
        1.0
    }
}

impl Scale {
    /// A scale holding zero and every finite value, with about `ticks` round steps.
    pub fn covering(
        values: impl IntoIterator<Item = f64>,
        from: f64,
        to: f64,
        ticks: u32,
    ) -> Scale {
        let (mut lo, mut hi) = (0.0f64, 0.0f64);
        for v in values.into_iter().filter(|v| v.is_finite()) {
            let v = v.clamp(-LIMIT, LIMIT);
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if hi - lo <= 0.0 {
            // Nothing but zeros (or nothing): an axis of 0 to 1.
            hi = lo + 1.0;
        }
        let step = nice_step((hi - lo) / f64::from(ticks.max(1)));
        let (lo, hi) = ((lo / step).floor() * step, (hi / step).ceil() * step);
        let (lo, hi) = if lo.is_finite() && hi.is_finite() && hi > lo {
            (lo, hi)
        } else {
            (0.0, 1.0)
        };
        Scale {
            lo,
            hi,
            step,
            from,
            to,
        }
    }

    /// Where `v` falls (clamped to the axis; not finite: at zero or the nearer end).
    pub fn at(&self, v: f64) -> f64 {
        let v = if v.is_finite() { v } else { 0.0 };
        let v = v.clamp(self.lo, self.hi);
        let t = (v - self.lo) / (self.hi - self.lo);
        let out = self.from + t * (self.to - self.from);
        if out.is_finite() {
            out
        } else {
            self.from
        }
    }

    /// The round values from `lo` to `hi` (at most a dozen).
    pub fn ticks(&self) -> Vec<f64> {
        let count = ((self.hi - self.lo) / self.step).round();
        let count = if count.is_finite() {
            count.clamp(1.0, 12.0) as u32
        } else {
            1
        };
        (0..=count)
            .map(|i| self.lo + f64::from(i) * self.step)
            .filter(|v| v.is_finite() && *v <= self.hi + self.step / 2.0)
            .collect()
    }
}

/// What every chart has: an id (for its title's id), a title, and the text shown when
/// there is nothing to draw.
pub struct Frame<'a> {
    pub id: &'a str,
    pub title: &'a str,
    pub empty: &'a str,
}

/// One bar of a bar chart. (No link: an `img` has no interactive parts; the table beside
/// the chart carries the links.)
pub struct Bar {
    pub label: String,
    pub value: f64,
}

const BAR_W: f64 = 360.0;
const BAR_ROW: f64 = 36.0;

/// Horizontal bars, one row each: the label above its bar, the value after it. Readable
/// at phone width, whatever the labels' length.
pub fn bars(frame: &Frame, items: &[Bar], fmt: &dyn Fn(f64) -> String) -> Markup {
    if items.is_empty() {
        return empty(frame);
    }
    // Room on the right for the value written after the longest bar.
    let x = Scale::covering(items.iter().map(|b| b.value), 0.0, BAR_W - 96.0, 4);
    let zero = x.at(0.0);
    let height = BAR_ROW * items.len() as f64 + 4.0;
    let title_id = format!("{}-title", frame.id);
    html! {
        figure class="chart" id=(frame.id) {
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {} {}", n(BAR_W), n(height)))
                width="100%" role="img" aria-labelledby=(title_id) font-size="12" {
                title id=(title_id) { (frame.title) }
                @for (i, b) in items.iter().enumerate() {
                    @let top = BAR_ROW * i as f64;
                    @let end = x.at(b.value);
                    @let shown = if b.value.is_finite() { fmt(b.value) } else { "—".to_string() };
                    @let (left, width) = if end >= zero { (zero, end - zero) } else { (end, zero - end) };
                    text x="0" y=(n(top + 12.0)) fill="#151515" { (b.label) }
                    rect x=(n(left)) y=(n(top + 16.0)) width=(n(width.max(1.0))) height="14"
                        fill=(PALETTE[0]) {
                        title { (b.label) ": " (shown) }
                    }
                    text x=(n(end.max(zero) + 4.0)) y=(n(top + 27.0)) fill="#151515" { (shown) }
                }
                line x1=(n(zero)) y1="14" x2=(n(zero)) y2=(n(height)) stroke="#555555" stroke-width="1" {}
            }
        }
    }
}

/// One line of a line chart: a value per x label, `None` where there is none (the line
/// breaks there).
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

const LINE_W: f64 = 360.0;
const LINE_H: f64 = 200.0;
/// The value axis' room: at least this, more for long tick labels, at most a third.
const LEFT: f64 = 40.0;
const LEFT_MAX: f64 = 120.0;
/// Width of a character of the axis' 11-unit text, roughly (digits and separators).
const CHAR_W: f64 = 6.4;
const RIGHT: f64 = 10.0;
const TOP: f64 = 10.0;
const BOTTOM: f64 = 28.0;
/// X labels written at most (the others are in the table).
const X_LABELS: usize = 4;

/// The room the value axis' labels need (chars of the longest).
pub fn left_for(labels: &[String]) -> f64 {
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    (8.0 + CHAR_W * longest as f64).clamp(LEFT, LEFT_MAX)
}

/// The x of point `i` of `count` across the plot right of `left` (one point: the middle).
pub fn x_of(left: f64, i: usize, count: usize) -> f64 {
    let (from, to) = (left + 8.0, LINE_W - RIGHT - 8.0);
    if count <= 1 {
        return (from + to) / 2.0;
    }
    from + (to - from) * i as f64 / (count - 1) as f64
}

/// Lines over periods with a value axis (ticks in the language's format), up to four
/// period labels, a dot per point with its value as a tooltip, and a legend.
pub fn lines(
    frame: &Frame,
    x_labels: &[String],
    series: &[Series],
    fmt: &dyn Fn(f64) -> String,
) -> Markup {
    let count = x_labels.len();
    let any = series.iter().any(|s| {
        s.values
            .iter()
            .take(count)
            .any(|v| v.is_some_and(f64::is_finite))
    });
    if count == 0 || !any {
        return empty(frame);
    }
    let y = Scale::covering(
        series
            .iter()
            .flat_map(|s| s.values.iter().take(count).flatten().copied()),
        LINE_H - BOTTOM,
        TOP,
        4,
    );
    let every = count.div_ceil(X_LABELS).max(1);
    let ticks: Vec<(f64, String)> = y.ticks().into_iter().map(|t| (t, fmt(t))).collect();
    let left = left_for(&ticks.iter().map(|t| t.1.clone()).collect::<Vec<_>>());
    let x_of = |i: usize, count: usize| x_of(left, i, count);
    let title_id = format!("{}-title", frame.id);
    html! {
        figure class="chart" id=(frame.id) {
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {} {}", n(LINE_W), n(LINE_H)))
                width="100%" role="img" aria-labelledby=(title_id) font-size="11" {
                title id=(title_id) { (frame.title) }
                @for (tick, label) in &ticks {
                    line x1=(n(left)) x2=(n(LINE_W - RIGHT)) y1=(n(y.at(*tick))) y2=(n(y.at(*tick)))
                        stroke=(if *tick == 0.0 { "#555555" } else { "#d6d6d2" }) stroke-width="1" {}
                    text x=(n(left - 4.0)) y=(n(y.at(*tick) + 4.0)) text-anchor="end" fill="#555555" { (label) }
                }
                @for (i, label) in x_labels.iter().enumerate() {
                    @if i % every == 0 {
                        // The ends' labels lean inwards, so that none is cut at the edge.
                        @let anchor = if count > 1 && i == 0 { "start" } else if count > 1 && i + every >= count { "end" } else { "middle" };
                        text x=(n(x_of(i, count))) y=(n(LINE_H - 8.0)) text-anchor=(anchor) fill="#555555" { (label) }
                    }
                }
                @for (k, s) in series.iter().enumerate() {
                    @let colour = PALETTE[k % PALETTE.len()];
                    @for run in runs(&s.values[..s.values.len().min(count)]) {
                        @if run.len() > 1 {
                            polyline fill="none" stroke=(colour) stroke-width="2"
                                points=(run.iter().map(|(i, v)| format!("{},{}", n(x_of(*i, count)), n(y.at(*v)))).collect::<Vec<_>>().join(" ")) {}
                        }
                    }
                    @for (i, v) in s.values.iter().take(count).enumerate() {
                        @if let Some(v) = v.filter(|v| v.is_finite()) {
                            circle cx=(n(x_of(i, count))) cy=(n(y.at(v))) r="3" fill=(colour) {
                                title { (s.name) ", " (x_labels[i]) ": " (fmt(v)) }
                            }
                        }
                    }
                }
            }
            (legend(series.iter().map(|s| s.name.as_str())))
        }
    }
}

/// The unbroken stretches of a series: (index, value) of consecutive finite values.
fn runs(values: &[Option<f64>]) -> Vec<Vec<(usize, f64)>> {
    let mut out: Vec<Vec<(usize, f64)>> = vec![Vec::new()];
    for (i, v) in values.iter().enumerate() {
        match v.filter(|v| v.is_finite()) {
            Some(v) => {
                if let Some(run) = out.last_mut() {
                    run.push((i, v));
                }
            }
            None => out.push(Vec::new()),
        }
    }
    out.retain(|r| !r.is_empty());
    out
}

/// The series' names with their colours, as HTML (it wraps on a phone).
fn legend<'a>(names: impl Iterator<Item = &'a str>) -> Markup {
    html! {
        figcaption {
            ul class="legend" {
                @for (k, name) in names.enumerate() {
                    li {
                        svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 12 12" width="12" height="12" aria-hidden="true" {
                            rect width="12" height="12" fill=(PALETTE[k % PALETTE.len()]) {}
                        }
                        " " (name)
                    }
                }
            }
        }
    }
}

const INTERVAL_W: f64 = 360.0;
const INTERVAL_H: f64 = 64.0;

/// An estimate with its interval on an axis that holds zero: the interval as a bar, the
/// estimate as a dot, zero as a dashed line (an interval that crosses it is no evidence of
/// a difference).
pub fn interval(
    frame: &Frame,
    estimate: f64,
    low: f64,
    high: f64,
    fmt: &dyn Fn(f64) -> String,
) -> Markup {
    if ![estimate, low, high].iter().all(|v| v.is_finite()) {
        return empty(frame);
    }
    let (low, high) = (low.min(high), low.max(high));
    // Room at both ends for a label centred on the end of the axis.
    let (left, right) = (40.0, INTERVAL_W - 40.0);
    let x = Scale::covering([low, high, estimate], left, right, 4);
    let title_id = format!("{}-title", frame.id);
    html! {
        figure class="chart" id=(frame.id) {
            svg xmlns="http://www.w3.org/2000/svg" viewBox=(format!("0 0 {} {}", n(INTERVAL_W), n(INTERVAL_H)))
                width="100%" role="img" aria-labelledby=(title_id) font-size="11" {
                title id=(title_id) { (frame.title) ": " (fmt(estimate)) " [" (fmt(low)) "; " (fmt(high)) "]" }
                line x1=(n(left)) x2=(n(right)) y1="34" y2="34" stroke="#d6d6d2" stroke-width="1" {}
                line x1=(n(x.at(0.0))) x2=(n(x.at(0.0))) y1="10" y2="44" stroke="#555555" stroke-width="1" stroke-dasharray="3 3" {}
                rect x=(n(x.at(low))) y="28" width=(n((x.at(high) - x.at(low)).max(1.0))) height="12" fill=(PALETTE[0]) fill-opacity="0.35" {}
                circle cx=(n(x.at(estimate))) cy="34" r="5" fill=(PALETTE[0]) {}
                text x=(n(x.at(estimate))) y="20" text-anchor="middle" fill="#151515" { (fmt(estimate)) }
                // The ends are written when they do not run into each other (else the
                // title and the page's figures give them).
                @if x.at(high) - x.at(low) >= 48.0 {
                    text x=(n(x.at(low))) y="58" text-anchor="middle" fill="#555555" { (fmt(low)) }
                    text x=(n(x.at(high))) y="58" text-anchor="middle" fill="#555555" { (fmt(high)) }
                }
            }
        }
    }
}

fn empty(frame: &Frame) -> Markup {
    html! {
        figure class="chart" id=(frame.id) {
            figcaption { (frame.title) }
            p class="note" data-empty="true" { (frame.empty) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> Frame<'static> {
        Frame {
            id: "c",
            title: "Chart",
            empty: "Nothing yet",
        }
    }

    fn fmt(v: f64) -> String {
        format!("{v}")
    }

    /// Every number in the SVG's attributes parses and is finite.
    fn finite(svg: &str) {
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        for attr in [
            " x=\"",
            " y=\"",
            " width=\"",
            " cx=\"",
            " cy=\"",
            " x1=\"",
            " x2=\"",
            " y1=\"",
            " y2=\"",
        ] {
            for part in svg.split(attr).skip(1) {
                let value = part[..part.find('"').unwrap()].trim_end_matches('%');
                let v: f64 = value.parse().unwrap_or_else(|_| panic!("{attr}{value}"));
                assert!(v.is_finite() && v.abs() < 1e6, "{attr}{value} in {svg}");
            }
        }
    }

    #[test]
    fn the_scale_holds_zero_and_the_values_with_round_ends() {
        let s = Scale::covering([3.0, 17.0], 0.0, 100.0, 4);
        assert_eq!((s.lo, s.hi, s.step), (0.0, 20.0, 5.0));
        assert_eq!(s.at(0.0), 0.0);
        assert_eq!(s.at(10.0), 50.0);
        assert_eq!(s.at(20.0), 100.0);
        assert_eq!(s.ticks(), vec![0.0, 5.0, 10.0, 15.0, 20.0]);
        // Upwards: a vertical axis.
        let v = Scale::covering([10.0], 200.0, 0.0, 4);
        assert_eq!(v.at(0.0), 200.0);
        assert_eq!(v.at(10.0), 0.0);
    }

    #[test]
    fn negative_values_put_zero_inside() {
        let s = Scale::covering([-30.0, 10.0], 0.0, 80.0, 4);
        assert_eq!((s.lo, s.hi), (-30.0, 10.0));
        assert_eq!(s.at(0.0), 60.0);
        assert!(s.ticks().contains(&0.0));
        let all_negative = Scale::covering([-5.0, -1.0], 0.0, 10.0, 4);
        assert_eq!(all_negative.hi, 0.0);
        assert!(all_negative.lo <= -5.0);
    }

    #[test]
    fn empty_equal_and_odd_values_give_a_usable_scale() {
        for values in [
            vec![],
            vec![0.0],
            vec![0.0, 0.0],
            vec![f64::NAN],
            vec![f64::INFINITY, f64::NEG_INFINITY],
            vec![f64::MAX, f64::MIN],
            vec![i64::MAX as f64, i64::MIN as f64],
            vec![1e-300],
        ] {
            let s = Scale::covering(values.clone(), 0.0, 100.0, 4);
            assert!(
                s.lo.is_finite() && s.hi.is_finite() && s.hi > s.lo,
                "{values:?}: {s:?}"
            );
            for v in values.iter().chain([0.0, f64::NAN].iter()) {
                let at = s.at(*v);
                assert!((0.0..=100.0).contains(&at), "{v} at {at} on {s:?}");
            }
            let ticks = s.ticks();
            assert!(!ticks.is_empty() && ticks.len() <= 13, "{ticks:?}");
            assert!(ticks.iter().all(|t| t.is_finite()));
        }
    }

    #[test]
    fn bars_of_nothing_one_negative_and_huge() {
        let f = frame();
        let none = bars(&f, &[], &fmt).into_string();
        assert!(none.contains("Nothing yet") && !none.contains("<svg"));
        let bar = |label: &str, value: f64| Bar {
            label: label.into(),
            value,
        };
        let one = bars(&f, &[bar("Only", 5.0)], &fmt).into_string();
        assert!(one.contains("<title id=\"c-title\">Chart</title>"));
        assert!(one.contains("aria-labelledby=\"c-title\""));
        finite(&one);
        let odd = bars(
            &f,
            &[
                bar("<b>", -40.0),
                bar("big", i64::MAX as f64),
                bar("nan", f64::NAN),
                bar("zero", 0.0),
            ],
            &fmt,
        )
        .into_string();
        assert!(odd.contains("&lt;b&gt;"));
        finite(&odd);
    }

    #[test]
    fn lines_break_at_gaps_and_survive_one_point() {
        let f = frame();
        let labels: Vec<String> = (1..=3).map(|i| format!("2026-0{i}")).collect();
        let none = lines(&f, &labels, &[], &fmt).into_string();
        assert!(none.contains("Nothing yet"));
        let gaps = lines(
            &f,
            &labels,
            &[Series {
                name: "Revenue".into(),
                values: vec![Some(1.0), None, Some(3.0)],
            }],
            &fmt,
        )
        .into_string();
        // Two runs of one point each: dots, no polyline.
        assert!(!gaps.contains("<polyline"), "{gaps}");
        assert_eq!(gaps.matches("<circle").count(), 2);
        finite(&gaps);
        let one = lines(
            &f,
            &labels[..1],
            &[Series {
                name: "One".into(),
                values: vec![Some(-7.0)],
            }],
            &fmt,
        )
        .into_string();
        assert_eq!(one.matches("<circle").count(), 1);
        finite(&one);
        let huge = lines(
            &f,
            &labels,
            &[
                Series {
                    name: "a".into(),
                    values: vec![Some(i64::MAX as f64), Some(i64::MIN as f64), Some(f64::NAN)],
                },
                // Longer than the labels: the rest is ignored.
                Series {
                    name: "b".into(),
                    values: vec![Some(1.0); 10],
                },
            ],
            &fmt,
        )
        .into_string();
        finite(&huge);
        assert_eq!(huge.matches("<polyline").count(), 2);
    }

    #[test]
    fn many_periods_write_a_few_labels() {
        let labels: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
        let s = Series {
            name: "x".into(),
            values: (0..100).map(|i| Some(f64::from(i))).collect(),
        };
        let svg = lines(&frame(), &labels, &[s], &fmt).into_string();
        let written = labels
            .iter()
            .filter(|l| svg.contains(&format!(">{l}</text>")))
            .count();
        assert!(written <= X_LABELS, "{written}");
        assert_eq!(svg.matches("<circle").count(), 100);
        finite(&svg);
    }

    #[test]
    fn an_interval_across_zero_and_a_broken_one() {
        let f = frame();
        let svg = interval(&f, 0.05, -0.02, 0.12, &fmt).into_string();
        finite(&svg);
        assert!(svg.contains("stroke-dasharray"));
        // Reversed ends are put in order; non-finite ones draw nothing.
        finite(&interval(&f, 1.0, 3.0, -1.0, &fmt).into_string());
        let broken = interval(&f, f64::NAN, 0.0, 1.0, &fmt).into_string();
        assert!(broken.contains("Nothing yet") && !broken.contains("NaN"));
    }

    #[test]
    fn the_value_axis_makes_room_for_long_labels() {
        assert_eq!(left_for(&[]), LEFT);
        assert_eq!(left_for(&["0".into(), "200".into()]), LEFT);
        let wide = left_for(&["12,000,000".into()]);
        assert!(wide >= 8.0 + 10.0 * CHAR_W - 0.01, "{wide}");
        assert_eq!(left_for(&["9".repeat(100)]), LEFT_MAX);
        // The points stay right of the axis whatever its room.
        assert!(x_of(LEFT_MAX, 0, 5) > LEFT_MAX);
        assert!(x_of(LEFT_MAX, 4, 5) < LINE_W);
    }

    #[test]
    fn coordinates_are_written_finite() {
        assert_eq!(n(1.25), "1.2");
        assert_eq!(n(f64::NAN), "0");
        assert_eq!(n(f64::INFINITY), "0");
    }
}
