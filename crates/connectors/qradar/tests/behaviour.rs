//! The shared stream-sink behaviour suite, run against the QRadar (LEEF) sink.

use std::sync::Arc;

use vowguard_core::Sink;
use vowguard_qradar::QRadarSink;
use vowguard_syslog::SyslogConfig;
use vowguard_testkit::stream_sink_suite::{self, StreamSinkHarness};

struct QRadar;

impl StreamSinkHarness for QRadar {
    fn name(&self) -> &str {
        "qradar"
    }
    fn build(&self, address: &str) -> Arc<dyn Sink> {
        Arc::new(
            QRadarSink::builder(SyslogConfig::new(address))
                .build()
                .unwrap(),
        )
    }
    fn event_id(&self, message: &str) -> Option<String> {
        let at = message.find("^eventId=")? + "^eventId=".len();
        message[at..].split('^').next().map(str::to_owned)
    }
}

#[tokio::test]
async fn qradar_passes_the_stream_sink_behaviour_suite() {
    stream_sink_suite::run(QRadar).await;
}
