//! The platform's default routing table and protocols.

use crate::config::RouterConfig;

/// The default router configuration as TOML (the same keys a config file uses).
///
/// * P0 → `oncall` (PagerDuty: severity critical, escalation policy security-emergency),
///   `secops` (Slack: #security-emergency and #wedding-ops-urgent, @channel),
///   `emergency_sms`, `security_mail` (urgent);
/// * P1 → `oncall` (error, security-standard), `secops` (#security-alerts and
///   #wedding-ops, the security user group), `security_mail` (high);
/// * P2..P4 → `secops` (#security-alerts);
/// * the three wedding-day protocols on with their defaults, and the default inhibit rule.
pub const DEFAULT_ROUTES_TOML: &str = r##"
# P0: page now.
[[routes]]
name = "p0-critical"
match = { priority = ["P0_CRITICAL"] }
notify = ["oncall", "secops", "emergency_sms", "security_mail"]
group_wait = "10s"
group_interval = "1m"
repeat_interval = "30m"

[routes.receiver_params.oncall]
severity = "critical"
escalation_policy = "security-emergency"

[routes.receiver_params.secops]
channels = ["#security-emergency", "#wedding-ops-urgent"]
mention = "channel"

[routes.receiver_params.security_mail]
email_priority = "urgent"

# P1: urgent, within the hour.
[[routes]]
name = "p1-high"
match = { priority = ["P1_HIGH"] }
notify = ["oncall", "secops", "security_mail"]
group_wait = "30s"
group_interval = "5m"
repeat_interval = "2h"

[routes.receiver_params.oncall]
severity = "error"
escalation_policy = "security-standard"

[routes.receiver_params.secops]
channels = ["#security-alerts", "#wedding-ops"]
mention = "subteam^S0SECURITY"

[routes.receiver_params.security_mail]
email_priority = "high"

# P2..P4: the security channel.
[[routes]]
name = "p2-p4"
match = { priority = ["P2_MEDIUM", "P3_LOW", "P4_INFO"] }
notify = ["secops"]
group_wait = "2m"
group_interval = "15m"
repeat_interval = "12h"

[routes.receiver_params.secops]
channels = ["#security-alerts"]

# A P0 for a wedding mutes that wedding's P2..P4 alerts for an hour.
[[inhibit_rules]]
source_matchers = ['priority="P0_CRITICAL"']
target_matchers = ['priority=~"P2_MEDIUM|P3_LOW|P4_INFO"']
equal = ["wedding_id"]
duration = "1h"

[protocols.saturday_escalation]
enabled = true
days = ["saturday"]
timezone = "Europe/London"
raise_levels = 1
notify = ["oncall"]
notify_min_priority = "P2_MEDIUM"
deliver_within = "2m"

[protocols.active_wedding_protection]
enabled = true
phases = ["day_of"]
vendor_compromise_phases = ["week_of", "day_of"]
min_severity = "low"
actions = ["lock_accounts", "read_only_mode", "notify_wedding_coordinator"]
deliver_within = "30s"

[protocols.guest_data_breach]
enabled = true
mass_query_records = 500
export_actions = ["guest_list.export", "guest_list.export_contacts", "guest_contacts.export"]
notify = ["legal"]
deadline = "72h"
deliver_within = "30s"
"##;

/// The platform's default routing table ([`DEFAULT_ROUTES_TOML`], parsed).
pub fn default_config() -> RouterConfig {
    toml::from_str(DEFAULT_ROUTES_TOML).expect("DEFAULT_ROUTES_TOML is valid")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ClassificationConfig, InhibitRule, ProtocolsConfig};

    #[test]
    fn defaults_in_toml_match_the_code_defaults() {
        let c = default_config();
        assert_eq!(c.protocols, ProtocolsConfig::default());
        assert_eq!(c.inhibit_rules, vec![InhibitRule::default()]);
        assert_eq!(c.classification, ClassificationConfig::default());
        let names: Vec<&str> = c.routes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["p0-critical", "p1-high", "p2-p4"]);
        assert_eq!(
            c.routes[0].notify,
            ["oncall", "secops", "emergency_sms", "security_mail"]
        );
    }
}
