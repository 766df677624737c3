//! `vowguard top`: a terminal view of a running instance's live figures, read from its
//! `GET /metrics` every interval (like `vector top`). Sinks with their delivery rate,
//! retries, dead letters, queue depth, oldest undelivered age and circuit; notifiers; the
//! totals. `q` or Esc quits.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use ratatui::Frame;
use ratatui::crossterm::event::{self, Event as TermEvent, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{Block, Paragraph, Row, Table};
use vowguard_core::Error;

/// One sink's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SinkFigures {
    /// Events delivered.
    pub delivered: f64,
    /// Deliveries retried.
    pub retried: f64,
    /// Events dead-lettered.
    pub dead_lettered: f64,
    /// Queue depth.
    pub queued: f64,
    /// Age of the oldest undelivered event, seconds.
    pub oldest_age: f64,
    /// Whether the circuit is open.
    pub circuit_open: bool,
    /// Requests in flight.
    pub in_flight: f64,
}

/// One notifier's figures.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NotifierFigures {
    /// Alerts delivered.
    pub sent: f64,
    /// Alerts not delivered.
    pub failed: f64,
}

/// What one scrape of `/metrics` says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Events received.
    pub received: f64,
    /// Events journaled.
    pub journaled: f64,
    /// Events dropped (journal full).
    pub dropped: f64,
    /// Alerts routed.
    pub alerts: f64,
    /// Dead letters stored.
    pub dead_letters: f64,
    /// Per sink id.
    pub sinks: BTreeMap<String, SinkFigures>,
    /// Per notifier id.
    pub notifiers: BTreeMap<String, NotifierFigures>,
}

/// The value of label `name` in a Prometheus label set body (`a="x",b="y"`), unescaped.
fn label_value(labels: &str, name: &str) -> Option<String> {
    let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
    let mut out = String::new();
    let mut chars = labels[start..].chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                other => out.push(other),
            },
            '"' => return Some(out),
            c => out.push(c),
        }
    }
    None
}

/// Reads the vowguard figures out of a Prometheus text exposition; unknown lines are
/// ignored.
pub fn parse(text: &str) -> Figures {
    let mut f = Figures::default();
    for line in text.lines() {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match series.split_once('{') {
            Some((name, rest)) => (name, rest.trim_end_matches('}')),
            None => (series, ""),
        };
        let sink = || label_value(labels, "sink").unwrap_or_default();
        let notifier = || label_value(labels, "notifier").unwrap_or_default();
        match name {
            "vowguard_events_received_total" => f.received = value,
            "vowguard_events_journaled_total" => f.journaled = value,
            "vowguard_events_dropped_total" => f.dropped = value,
            "vowguard_alerts_routed_total" => f.alerts = value,
            "vowguard_dead_letter_records" => f.dead_letters = value,
            "vowguard_sink_delivered_total" => f.sinks.entry(sink()).or_default().delivered = value,
            "vowguard_sink_retried_total" => f.sinks.entry(sink()).or_default().retried = value,
            "vowguard_sink_dead_lettered_total" => {
                f.sinks.entry(sink()).or_default().dead_lettered = value;
            }
            "vowguard_sink_queue_depth" => f.sinks.entry(sink()).or_default().queued = value,
            "vowguard_sink_oldest_undelivered_age_seconds" => {
                f.sinks.entry(sink()).or_default().oldest_age = value;
            }
            "vowguard_sink_circuit_open" => {
                f.sinks.entry(sink()).or_default().circuit_open = value > 0.0;
            }
            "vowguard_sink_requests_in_flight" => {
                f.sinks.entry(sink()).or_default().in_flight = value;
            }
            "vowguard_notifier_sent_total" => {
                f.notifiers.entry(notifier()).or_default().sent = value;
            }
            "vowguard_notifier_failed_total" => {
                f.notifiers.entry(notifier()).or_default().failed = value;
            }
            _ => {}
        }
    }
    f
}

fn rate(now: f64, before: Option<f64>, secs: f64) -> String {
    match before {
        Some(before) if secs > 0.0 => format!("{:.1}/s", (now - before).max(0.0) / secs),
        _ => "–".to_owned(),
    }
}

/// Draws `now` (with rates against `before`, `secs` earlier) for the instance at `url`.
pub fn draw(frame: &mut Frame<'_>, url: &str, now: &Figures, before: Option<(&Figures, f64)>) {
    let secs = before.map_or(0.0, |b| b.1);
    let prev = before.map(|b| b.0);
    let [head, sinks, notifiers, foot] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(4),
        Constraint::Length((now.notifiers.len() as u16).saturating_add(3)),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let totals = format!(
        "received {} ({})  journaled {}  dropped {}  alerts {}  dead letters {}",
        now.received,
        rate(now.received, prev.map(|p| p.received), secs),
        now.journaled,
        now.dropped,
        now.alerts,
        now.dead_letters
    );
    frame.render_widget(
        Paragraph::new(totals).block(Block::bordered().title(format!(" vowguard top · {url} "))),
        head,
    );
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let rows = now.sinks.iter().map(|(id, s)| {
        let before = prev.and_then(|p| p.sinks.get(id)).map(|p| p.delivered);
        let circuit = if s.circuit_open { "OPEN" } else { "closed" };
        Row::new(vec![
            id.clone(),
            format!("{}", s.delivered),
            rate(s.delivered, before, secs),
            format!("{}", s.in_flight),
            format!("{}", s.retried),
            format!("{}", s.dead_lettered),
            format!("{}", s.queued),
            format!("{:.1}s", s.oldest_age),
            circuit.to_owned(),
        ])
        .style(if s.circuit_open {
            Style::default().fg(Color::Red)
        } else {
            Style::default()
        })
    });
    let widths = [
        Constraint::Min(12),
        Constraint::Length(10),
        Constraint::Length(10),
        Constraint::Length(9),
        Constraint::Length(8),
        Constraint::Length(13),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(7),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(
                Row::new(vec![
                    "sink",
                    "delivered",
                    "rate",
                    "in flight",
                    "retries",
                    "dead-lettered",
                    "queue",
                    "oldest",
                    "circuit",
                ])
                .style(bold),
            )
            .block(Block::bordered().title(" sinks ")),
        sinks,
    );
    let rows = now.notifiers.iter().map(|(id, n)| {
        Row::new(vec![
            id.clone(),
            format!("{}", n.sent),
            format!("{}", n.failed),
        ])
    });
    frame.render_widget(
        Table::new(
            rows,
            [
                Constraint::Min(12),
                Constraint::Length(10),
                Constraint::Length(10),
            ],
        )
        .header(Row::new(vec!["notifier", "sent", "failed"]).style(bold))
        .block(Block::bordered().title(" notifiers ")),
        notifiers,
    );
    frame.render_widget(Paragraph::new("q: quit"), foot);
}

async fn scrape(client: &reqwest::Client, url: &str) -> Result<Figures, Error> {
    let response = client
        .get(format!("{}/metrics", url.trim_end_matches('/')))
        .send()
        .await
        .map_err(|e| Error::unavailable(format!("cannot reach {url}: {e}")))?;
    if !response.status().is_success() {
        return Err(Error::unavailable(format!(
            "{url}/metrics answered {}",
            response.status()
        )));
    }
    let text = response
        .text()
        .await
        .map_err(|e| Error::unavailable(format!("cannot read {url}/metrics: {e}")))?;
    Ok(parse(&text))
}

/// Shows the live figures of the instance at `url` (its `[server]` address, e.g.
/// `http://127.0.0.1:8686`) every `interval` until `q`. Needs a terminal.
pub async fn run(url: &str, interval: Duration) -> Result<(), Error> {
    use std::io::IsTerminal as _;
    if !std::io::stdout().is_terminal() {
        return Err(Error::invalid_input(
            "vowguard top needs a terminal (scrape /metrics for piped output)",
        ));
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| Error::internal(format!("cannot build the HTTP client: {e}")))?;
    // Fails early, before the terminal is taken over, when nothing answers.
    let mut now = scrape(&client, url).await?;
    let mut taken = Instant::now();
    let mut before: Option<(Figures, Instant)> = None;
    let mut terminal = ratatui::init();
    let result = loop {
        let previous = before
            .as_ref()
            .map(|(f, at)| (f, taken.duration_since(*at).as_secs_f64()));
        if let Err(e) = terminal.draw(|frame| draw(frame, url, &now, previous)) {
            break Err(Error::internal(format!("cannot draw: {e}")));
        }
        let quit = tokio::task::spawn_blocking(move || -> std::io::Result<bool> {
            if event::poll(interval)?
                && let TermEvent::Key(key) = event::read()?
            {
                return Ok(key.kind == KeyEventKind::Press
                    && matches!(key.code, KeyCode::Char('q') | KeyCode::Esc));
            }
            Ok(false)
        })
        .await;
        match quit {
            Ok(Ok(true)) => break Ok(()),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => break Err(Error::internal(format!("cannot read the terminal: {e}"))),
            Err(e) => break Err(Error::internal(format!("the input task failed: {e}"))),
        }
        match scrape(&client, url).await {
            Ok(figures) => {
                before = Some((std::mem::replace(&mut now, figures), taken));
                taken = Instant::now();
            }
            Err(e) => break Err(e),
        }
    };
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    const TEXT: &str = "# TYPE vowguard_events_received_total counter\n\
vowguard_events_received_total 120\n\
vowguard_dead_letter_records 2\n\
vowguard_sink_delivered_total{sink=\"splunk\"} 100\n\
vowguard_sink_queue_depth{sink=\"splunk\"} 20\n\
vowguard_sink_circuit_open{sink=\"we\\\"ird\"} 1\n\
vowguard_notifier_sent_total{notifier=\"slack\"} 3\n\
vowguard_sink_request_duration_seconds_bucket{sink=\"splunk\",le=\"0.005\"} 4\n";

    #[test]
    fn parses_the_exposition() {
        let f = parse(TEXT);
        assert_eq!(f.received, 120.0);
        assert_eq!(f.dead_letters, 2.0);
        assert_eq!(f.sinks["splunk"].delivered, 100.0);
        assert_eq!(f.sinks["splunk"].queued, 20.0);
        assert!(f.sinks["we\"ird"].circuit_open, "labels are unescaped");
        assert_eq!(f.notifiers["slack"].sent, 3.0);
    }

    #[test]
    fn draws_sinks_with_their_rate() {
        let now = parse(TEXT);
        let mut before = now.clone();
        before.sinks.get_mut("splunk").unwrap().delivered = 80.0;
        let mut terminal = Terminal::new(TestBackend::new(100, 14)).unwrap();
        terminal
            .draw(|frame| draw(frame, "http://127.0.0.1:8686", &now, Some((&before, 10.0))))
            .unwrap();
        let screen: String = terminal
            .backend()
            .buffer()
            .content()
            .chunks(100)
            .map(|line| line.iter().map(|c| c.symbol()).collect::<String>() + "\n")
            .collect();
        assert!(
            screen.contains("vowguard top · http://127.0.0.1:8686"),
            "{screen}"
        );
        assert!(screen.contains("splunk"), "{screen}");
        assert!(
            screen.contains("2.0/s"),
            "20 more delivered in 10 s: {screen}"
        );
        assert!(screen.contains("OPEN"), "{screen}");
        assert!(screen.contains("slack"), "{screen}");
    }
}
