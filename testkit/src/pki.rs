//! A throwaway certificate authority and token files, for tests of the daemons' channels.
//!
//! `Pki::new(dir)` makes a CA; `issue(name)` a certificate signed by it (valid for `name`,
//! `localhost` and 127.0.0.1); `token(name)` a random token in a file only its owner can read.
//! Everything is written under `dir` with the modes the daemons insist on.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};

/// A certificate and its key, as files.
#[derive(Clone, Debug)]
pub struct Issued {
    /// PEM certificate.
    pub cert_file: PathBuf,
    /// PEM private key (mode 0600).
    pub key_file: PathBuf,
}

/// A certificate authority whose files live in a directory.
pub struct Pki {
    dir: PathBuf,
    ca: rcgen::Certificate,
    ca_key: KeyPair,
    /// The CA's certificate (what `<socket> ca_file` names).
    pub ca_file: PathBuf,
}

fn private(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("chmod {}", path.display()))
}

impl Pki {
    /// A new CA named `name`, its files in `dir` (created if needed).
    pub fn new(dir: &Path, name: &str) -> anyhow::Result<Pki> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let ca_key = KeyPair::generate().context("CA key")?;
        let mut params = CertificateParams::new(Vec::new()).context("CA params")?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = params.self_signed(&ca_key).context("self-signing the CA")?;
        let ca_file = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&ca_file, ca.pem()).context("writing the CA")?;
        Ok(Pki {
            dir: dir.to_path_buf(),
            ca,
            ca_key,
            ca_file,
        })
    }

    /// A certificate for `name` signed by this CA, usable by a server and a client.
    pub fn issue(&self, name: &str) -> anyhow::Result<Issued> {
        let key = KeyPair::generate().context("key")?;
        let mut params = CertificateParams::new(vec![name.to_string(), "localhost".to_string()])
            .context("params")?;
        params.subject_alt_names.push(rcgen::SanType::IpAddress(
            std::net::Ipv4Addr::LOCALHOST.into(),
        ));
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params
            .signed_by(&key, &self.ca, &self.ca_key)
            .context("signing")?;
        let cert_file = self.dir.join(format!("{name}.pem"));
        let key_file = self.dir.join(format!("{name}.key"));
        std::fs::write(&cert_file, cert.pem()).context("writing the certificate")?;
        private(&key_file, &key.serialize_pem())?;
        Ok(Issued {
            cert_file,
            key_file,
        })
    }

    /// The `<socket>` section for `type ssl` with `issued`, plus `extra` lines.
    pub fn socket_section(&self, issued: &Issued, extra: &str) -> String {
        format!(
            "<socket>\n    type ssl\n    cert_file {}\n    key_file {}\n    ca_file {}\n{extra}</socket>\n",
            issued.cert_file.display(),
            issued.key_file.display(),
            self.ca_file.display()
        )
    }
}

/// A random token: 48 hexadecimal digits.
pub fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0u8; 24];
    getrandom(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes `token` to `dir/<name>.secret` (mode 0600); its path.
pub fn write_token(dir: &Path, name: &str, token: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{name}.secret"));
    private(&path, &format!("{token}\n"))?;
    Ok(path)
}

/// Writes a random token to `dir/<name>.secret` (mode 0600) and returns the path and token.
pub fn token(dir: &Path, name: &str) -> anyhow::Result<(PathBuf, String)> {
    let token = random_token()?;
    Ok((write_token(dir, name, &token)?, token))
}

fn getrandom(buf: &mut [u8]) -> anyhow::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(buf))
        .context("reading /dev/urandom")
}

/// One token per channel, in files under a directory, and the `<socket>` lines naming them.
#[derive(Clone, Debug)]
pub struct Secrets {
    /// `api_secret_file`'s token.
    pub admin: String,
    /// `api_readonly_secret_file`'s token.
    pub read_only: String,
    /// `raft_secret_file`'s token.
    pub raft: String,
    /// `agent_secret_file`'s token.
    pub agent: String,
    /// The `<socket>` lines (without the section's tags).
    pub lines: String,
}

impl Secrets {
    /// New random tokens in `dir`.
    pub fn create(dir: &Path) -> anyhow::Result<Secrets> {
        let mut lines = String::new();
        let mut tokens = Vec::new();
        for (key, name) in [
            ("api_secret_file", "api"),
            ("api_readonly_secret_file", "api-readonly"),
            ("raft_secret_file", "raft"),
            ("agent_secret_file", "agent"),
        ] {
            let (path, token) = token(dir, name)?;
            lines.push_str(&format!("    {key} {}\n", path.display()));
            tokens.push(token);
        }
        let mut tokens = tokens.into_iter();
        let mut next = || tokens.next().unwrap_or_default();
        Ok(Secrets {
            admin: next(),
            read_only: next(),
            raft: next(),
            agent: next(),
            lines,
        })
    }

    /// A plain `<socket>` section with the secret files.
    pub fn socket_section(&self) -> String {
        format!("<socket>\n{}</socket>\n", self.lines)
    }

    /// Every token, for checking that none was logged.
    pub fn all(&self) -> [&str; 4] {
        [&self.admin, &self.read_only, &self.raft, &self.agent]
    }
}
