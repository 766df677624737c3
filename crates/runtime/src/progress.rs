//! Progress bars for long command-line work (`vowguard dlq replay`, `vulns sync`,
//! `audit verify`, `audit rebuild-store`, `report`): done / total, rate and time left,
//! drawn on standard error only when it is a terminal (piped or redirected output stays
//! quiet). The command prints its one-line summary after the bar is cleared.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vowguard_store::CatchUpProgress;

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

/// Like [`bar`], counting bytes (`audit verify` reads and hashes the whole entry log).
pub fn byte_bar(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// Moves `bar` to where a store catch-up stands: audit records applied of those in the
/// log (the store may start part way, so the bar counts log entries, not this run's).
pub fn catch_up(bar: &ProgressBar, at: CatchUpProgress) {
    if let Some(total) = at.total {
        bar.set_length(total.max(at.next_index));
    }
    bar.set_position(at.next_index);
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

    #[test]
    fn a_catch_up_counts_log_entries_and_a_byte_bar_bytes() {
        let bar = bar(0, "rebuilding");
        catch_up(
            &bar,
            CatchUpProgress {
                next_index: 0,
                total: Some(2500),
                applied: 0,
            },
        );
        assert_eq!((bar.position(), bar.length()), (0, Some(2500)));
        catch_up(
            &bar,
            CatchUpProgress {
                next_index: 1000,
                total: Some(2500),
                applied: 1000,
            },
        );
        assert_eq!((bar.position(), bar.length()), (1000, Some(2500)));
        // A log that grew while the store caught up never shows more done than total.
        catch_up(
            &bar,
            CatchUpProgress {
                next_index: 2600,
                total: Some(2500),
                applied: 2600,
            },
        );
        assert_eq!((bar.position(), bar.length()), (2600, Some(2600)));
        let bytes = byte_bar(0, "verifying");
        bytes.set_length(4 << 20);
        bytes.set_position(1 << 20);
        assert_eq!((bytes.position(), bytes.length()), (1 << 20, Some(4 << 20)));
    }
}
