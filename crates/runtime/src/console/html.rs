//! HTML building blocks of the console: escaping, the page layout and the inline SVG chart.

use std::fmt::Write as _;

/// Escapes text for an HTML element body or a quoted attribute value. Every event field,
/// id, reason and error shown by the console goes through here.
pub(crate) fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Percent-encodes a query value (ids in links).
pub(crate) fn query_value(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// A whole page: `title` (escaped here) and `body` (already HTML). Refreshes itself every
/// 30 s (a `meta` refresh: no script).
pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width\">\
<meta http-equiv=\"refresh\" content=\"30\">\
<title>{title} · vowguard</title>\
<link rel=\"stylesheet\" href=\"/ui/static/console.css\"></head><body>\
<header><strong>vowguard</strong><a href=\"/ui\">Health</a><a href=\"/ui/alerts\">Alerts</a>\
<a href=\"/ui/dead-letters\">Dead letters</a><a href=\"/ui/incidents\">Incidents &amp; breaches</a></header>\
<main><h1>{title}</h1>{body}</main></body></html>\n",
        title = esc(title)
    )
}

/// A page without the navigation (login, errors).
pub(crate) fn bare_page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>{title} · vowguard</title>\
<link rel=\"stylesheet\" href=\"/ui/static/console.css\"></head><body>\
<header><strong>vowguard</strong></header><main><h1>{title}</h1>{body}</main></body></html>\n",
        title = esc(title)
    )
}

/// A line chart of `points` (x in seconds relative to the right edge, y ≥ 0) as inline
/// SVG, `width`×`height` pixels, with the maximum labelled. No style attributes (the CSP
/// allows no inline style): presentation attributes only.
pub(crate) fn line_chart(points: &[(f64, f64)], span_secs: f64, unit: &str) -> String {
    const W: f64 = 480.0;
    const H: f64 = 140.0;
    let max = points.iter().map(|p| p.1).fold(0.0_f64, f64::max);
    let top = if max > 0.0 { max * 1.1 } else { 1.0 };
    let mut path = String::new();
    for (x, y) in points {
        let px = W * (1.0 - (-x / span_secs).clamp(0.0, 1.0));
        let py = H - H * (y / top);
        let _ = write!(path, "{px:.1},{py:.1} ");
    }
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{W}\" height=\"{}\" viewBox=\"0 0 {W} {}\" role=\"img\">\
<rect x=\"0\" y=\"0\" width=\"{W}\" height=\"{H}\" fill=\"#fbfcfd\" stroke=\"#e3e6eb\"/>\
<polyline points=\"{}\" fill=\"none\" stroke=\"#2f6feb\" stroke-width=\"2\"/>\
<text x=\"4\" y=\"12\" font-size=\"11\" fill=\"#59636e\">max {} {}</text>\
<text x=\"4\" y=\"{}\" font-size=\"11\" fill=\"#59636e\">-{} min</text>\
<text x=\"{}\" y=\"{}\" font-size=\"11\" fill=\"#59636e\">now</text></svg>",
        H + 16.0,
        H + 16.0,
        path.trim_end(),
        format_number(max),
        esc(unit),
        H + 13.0,
        (span_secs / 60.0).round(),
        W - 24.0,
        H + 13.0,
    )
}

/// A number with at most 3 decimals, trailing zeros dropped.
pub(crate) fn format_number(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_owned()
}

/// A duration in seconds as `2h 05m`, `4m 10s` or `12s`.
pub(crate) fn format_duration(secs: i64) -> String {
    let s = secs.unsigned_abs();
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            esc("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(query_value("a b&c/é"), "a%20b%26c%2F%C3%A9");
    }

    #[test]
    fn durations_and_numbers() {
        assert_eq!(format_duration(7500), "2h 05m");
        assert_eq!(format_duration(-250), "4m 10s");
        assert_eq!(format_duration(12), "12s");
        assert_eq!(format_number(2.5), "2.5");
        assert_eq!(format_number(3.0), "3");
    }

    #[test]
    fn the_chart_escapes_its_unit_and_plots_every_point() {
        let svg = line_chart(
            &[(-3600.0, 0.0), (-1800.0, 5.0), (0.0, 10.0)],
            3600.0,
            "<b>",
        );
        assert!(svg.contains("max 10 &lt;b&gt;"), "{svg}");
        assert!(
            svg.contains("points=\"0.0,140.0 240.0,76.4 480.0,12.7\""),
            "{svg}"
        );
        assert!(!svg.contains("style="));
    }
}
