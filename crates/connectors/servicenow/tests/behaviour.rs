//! The shared ticket-system behaviour suite, run against the ServiceNow connector and a
//! simulated instance.

mod support;

use vowguard_testkit::ticket_suite;

#[tokio::test]
async fn servicenow_passes_the_ticket_behaviour_suite() {
    ticket_suite::run(support::ServiceNowHarness).await;
}
