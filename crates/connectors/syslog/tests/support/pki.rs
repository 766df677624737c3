//! A throw-away CA, a server certificate and a client certificate, generated with rcgen
//! (aws-lc-rs backend, the same provider rustls uses here) and written to a temp dir.

use std::path::PathBuf;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Files and DER forms of a test PKI.
pub struct TestPki {
    /// Keeps the files alive.
    pub dir: tempfile::TempDir,
    /// The CA certificate (PEM file).
    pub ca_file: PathBuf,
    /// The server certificate (PEM file).
    pub server_cert_file: PathBuf,
    /// The server private key (PEM file, PKCS#8).
    pub server_key_file: PathBuf,
    /// A client certificate signed by the CA (PEM file).
    pub client_cert_file: PathBuf,
    /// The client private key (PEM file).
    pub client_key_file: PathBuf,
    /// The CA certificate (DER).
    pub ca_der: CertificateDer<'static>,
}

impl TestPki {
    /// Generates a CA and a server certificate valid for `server_names` (DNS names or IPs).
    pub fn generate(server_names: &[&str]) -> TestPki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "vowguard test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);

        let names: Vec<String> = server_names.iter().map(|s| (*s).to_owned()).collect();
        let server_key = KeyPair::generate().unwrap();
        let mut server_params = CertificateParams::new(names).unwrap();
        server_params
            .distinguished_name
            .push(DnType::CommonName, server_names[0]);
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();

        let client_key = KeyPair::generate().unwrap();
        let mut client_params = CertificateParams::new(vec!["vowguard-client".to_owned()]).unwrap();
        client_params
            .distinguished_name
            .push(DnType::CommonName, "vowguard-client");
        let client_cert = client_params.signed_by(&client_key, &issuer).unwrap();

        let write = |name: &str, contents: String| {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            path
        };
        TestPki {
            ca_file: write("ca.pem", ca_cert.pem()),
            server_cert_file: write("server.pem", server_cert.pem()),
            server_key_file: write("server-key.pem", server_key.serialize_pem()),
            client_cert_file: write("client.pem", client_cert.pem()),
            client_key_file: write("client-key.pem", client_key.serialize_pem()),
            ca_der: ca_cert.der().clone(),
            dir,
        }
    }

    /// The server certificate chain and key, for a rustls server.
    pub fn server_identity(&self) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let chain = CertificateDer::pem_file_iter(&self.server_cert_file)
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&self.server_key_file).unwrap();
        (chain, key)
    }
}
