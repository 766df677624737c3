//! The shared ticket-system behaviour suite, run against the Jira connector and a
//! simulated Jira Cloud.

mod support;

use vowguard_testkit::ticket_suite;

#[tokio::test]
async fn jira_passes_the_ticket_behaviour_suite() {
    ticket_suite::run(support::JiraHarness).await;
}
