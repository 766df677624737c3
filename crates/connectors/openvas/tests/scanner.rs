//! `OpenvasScanner::sync` on report files: pages, the modification-time checkpoint,
//! refusals naming the file, and registration.

use std::path::Path;

use async_trait::async_trait;
use vowguard_core::{
    BuildContext, Builder, Error, ErrorKind, Finding, FindingPages, Role, Scanner, SecretMap,
};
use vowguard_openvas::{OpenvasConfig, OpenvasScanner};

#[derive(Default)]
struct Pages(Vec<Vec<Finding>>);

#[async_trait]
impl FindingPages for Pages {
    async fn page(&mut self, findings: Vec<Finding>) -> Result<(), Error> {
        self.0.push(findings);
        Ok(())
    }
}

fn sample() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/report.xml")).unwrap()
}

#[tokio::test]
async fn sync_reads_the_file_in_pages_and_skips_it_when_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("report.xml"), sample()).unwrap();
    let mut config = OpenvasConfig::new("report.xml");
    config.page_size = 2;
    // A relative path is taken from the config directory.
    let scanner = OpenvasScanner::new("greenbone", &config, dir.path()).unwrap();
    assert_eq!(scanner.kind(), "openvas");

    let mut pages = Pages::default();
    let summary = scanner.sync(None, &mut pages).await.unwrap();
    assert_eq!(summary.findings, 5);
    assert_eq!(summary.pages, 3);
    let sizes: Vec<usize> = pages.0.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 1]);
    assert!(pages.0.iter().flatten().all(|f| f.scanner == "greenbone"));
    let checkpoint = summary.checkpoint.expect("the file's modification time");

    // Not modified since the checkpoint: nothing is read.
    let mut again = Pages::default();
    let summary = scanner.sync(Some(checkpoint), &mut again).await.unwrap();
    assert_eq!((summary.findings, summary.pages), (0, 0));
    assert!(again.0.is_empty());
    assert_eq!(summary.checkpoint, Some(checkpoint));
}

#[tokio::test]
async fn a_hostile_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bomb.xml");
    std::fs::write(
        &path,
        "<?xml version=\"1.0\"?>\n<!DOCTYPE x [<!ENTITY a \"b\">]><report/>",
    )
    .unwrap();
    let scanner = OpenvasScanner::new("gb", &OpenvasConfig::new(&path), Path::new("/")).unwrap();
    let err = scanner.sync(None, &mut Pages::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(err.component(), Some("gb"));
    assert_eq!(
        err.message(),
        format!(
            "{}: byte 22: a DOCTYPE is not accepted (no DTD or entity expansion)",
            path.display()
        )
    );

    let mut config = OpenvasConfig::new(&path);
    config.max_file_bytes = 10;
    let scanner = OpenvasScanner::new("gb", &config, Path::new("/")).unwrap();
    let err = scanner.sync(None, &mut Pages::default()).await.unwrap_err();
    assert!(
        err.message().contains("more than max_file_bytes (10)"),
        "{err}"
    );

    let scanner = OpenvasScanner::new(
        "gb",
        &OpenvasConfig::new(dir.path().join("missing.xml")),
        Path::new("/"),
    )
    .unwrap();
    let err = scanner.sync(None, &mut Pages::default()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Io);
    assert!(err.to_string().contains("missing.xml"), "{err}");
}

#[tokio::test]
async fn a_failing_page_stops_the_sync() {
    struct Refuse;
    #[async_trait]
    impl FindingPages for Refuse {
        async fn page(&mut self, _: Vec<Finding>) -> Result<(), Error> {
            Err(Error::unavailable("store down"))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.xml"), sample()).unwrap();
    let mut config = OpenvasConfig::new("r.xml");
    config.page_size = 1;
    let scanner = OpenvasScanner::new("gb", &config, dir.path()).unwrap();
    let err = scanner.sync(None, &mut Refuse).await.unwrap_err();
    assert_eq!(err.message(), "store down");
}

#[test]
fn registered_and_built_from_config_with_keys_named() {
    let factory = vowguard_core::registry::find(Role::Scanner, "openvas").unwrap();
    let Builder::Scanner(build) = factory.builder else {
        panic!("openvas is registered as a scanner");
    };
    let secrets = SecretMap::new();
    let ctx = BuildContext {
        id: "greenbone",
        role: Role::Scanner,
        data_dir: Path::new("."),
        config_dir: Path::new("/etc/vowguard"),
        secrets: &secrets,
    };
    let table: vowguard_core::ComponentConfig =
        toml::from_str("report = \"r.xml\"\nmin_qod = 70").unwrap();
    let scanner = build(&ctx, table).unwrap();
    assert_eq!(scanner.kind(), "openvas");
    let table: vowguard_core::ComponentConfig =
        toml::from_str("report = \"r.xml\"\nmin_qod = 170").unwrap();
    let err = build(&ctx, table).unwrap_err().to_string();
    assert!(err.contains("`scanners.greenbone.min_qod`"), "{err}");
    let table: vowguard_core::ComponentConfig =
        toml::from_str("report = \"r.xml\"\nreports = 1").unwrap();
    let err = build(&ctx, table).unwrap_err().to_string();
    assert!(
        err.contains("`scanners.greenbone`: unknown field `reports`"),
        "{err}"
    );
}
