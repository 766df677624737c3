//! Progress bars for long command-line work (`vowguard dlq replay`): done / total, rate
//! and time left, drawn on standard error only when it is a terminal (piped or redirected
//! output stays quiet). The command prints its one-line summary after the bar is cleared.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A bar of `total` steps labelled `what`, hidden when standard error is not a terminal.
pub fn bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} ({per_sec}, {eta} left)")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_steps_and_stays_hidden_off_a_terminal() {
        use std::io::IsTerminal as _;
        let bar = bar(3, "replaying");
        bar.inc(1);
        bar.inc(2);
        assert_eq!(bar.position(), 3);
        assert_eq!(bar.length(), Some(3));
        // Under the test harness standard error is captured: not a terminal, nothing drawn.
        assert_eq!(bar.is_hidden(), !std::io::stderr().is_terminal());
        bar.finish_and_clear();
    }
}
