//! The CNCF distribution registry (Debian's `docker-registry`, which `make test` installs), run
//! for one test: a free loopback port, htpasswd Basic auth, a certificate from a private CA,
//! storage in a temporary directory. Not a stub: the real server, with its own answers.

use std::io::Read as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::PrivateCa;

#[derive(Debug)]
pub struct Registry {
    child: Option<Child>,
    /// Its data and configuration, removed on drop.
    _dir: tempfile::TempDir,
    /// `https://127.0.0.1:<port>`.
    pub url: String,
    /// The private CA that signed the registry's certificate.
    pub ca_pem: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Registry {
    /// Starts a registry that knows `users` (name, password).
    pub fn start(users: &[(&str, &str)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut htpasswd = String::new();
        for (user, password) in users {
            let out = Command::new("htpasswd")
                .args(["-Bbn", user, password])
                .output()
                .expect("`htpasswd` is not installed: `make test` installs it (Debian package apache2-utils)");
            assert!(out.status.success(), "htpasswd failed: {}", String::from_utf8_lossy(&out.stderr));
            htpasswd.push_str(String::from_utf8(out.stdout).unwrap().trim());
            htpasswd.push('\n');
        }
        let ca = PrivateCa::new();
        let path = |name: &str| dir.path().join(name).display().to_string();
        std::fs::write(path("htpasswd"), htpasswd).unwrap();
        std::fs::write(path("cert.pem"), &ca.leaf_pem).unwrap();
        std::fs::write(path("key.pem"), &ca.leaf_key_pem).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {data}\n\
             http:\n  addr: 127.0.0.1:{port}\n  tls:\n    certificate: {cert}\n    key: {key}\n\
             auth:\n  htpasswd:\n    realm: stella-test\n    path: {htpasswd}\n",
            data = path("data"),
            cert = path("cert.pem"),
            key = path("key.pem"),
            htpasswd = path("htpasswd"),
        );
        std::fs::write(path("config.yml"), config).unwrap();
        let child = Command::new("docker-registry")
            .args(["serve", &path("config.yml")])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("`docker-registry` is not installed: `make test` installs it (Debian package docker-registry)");
        let mut registry =
            Self { child: Some(child), _dir: dir, url: format!("https://127.0.0.1:{port}"), ca_pem: ca.ca_pem };
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = registry.child.as_mut().unwrap().try_wait().unwrap() {
                let mut log = String::new();
                let _ = registry.child.take().unwrap().stderr.unwrap().read_to_string(&mut log);
                panic!("docker-registry exited ({status}): {log}");
            }
            assert!(Instant::now() < deadline, "docker-registry did not listen on {port} within 15 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// Stops the registry; its port then refuses connections.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
