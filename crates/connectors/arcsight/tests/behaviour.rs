//! The shared stream-sink behaviour suite, run against the ArcSight (CEF) sink.

use std::sync::Arc;

use vowguard_arcsight::ArcSightSink;
use vowguard_core::Sink;
use vowguard_syslog::SyslogConfig;
use vowguard_testkit::stream_sink_suite::{self, StreamSinkHarness};

struct ArcSight;

impl StreamSinkHarness for ArcSight {
    fn name(&self) -> &str {
        "arcsight"
    }
    fn build(&self, address: &str) -> Arc<dyn Sink> {
        Arc::new(
            ArcSightSink::builder(SyslogConfig::new(address))
                .build()
                .unwrap(),
        )
    }
    fn event_id(&self, message: &str) -> Option<String> {
        let at = message.find(" externalId=")? + " externalId=".len();
        message[at..].split(' ').next().map(str::to_owned)
    }
}

#[tokio::test]
async fn arcsight_passes_the_stream_sink_behaviour_suite() {
    stream_sink_suite::run(ArcSight).await;
}
