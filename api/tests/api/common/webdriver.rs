//! A minimal W3C WebDriver client over reqwest, for the console's browser tests: it starts
//! chromedriver on a free loopback port and drives a headless Chromium (Debian's `chromium` and
//! `chromium-driver`, which `make test-tools` installs). Only what the tests use: navigate, find,
//! click, type, read, screenshot.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// How long a page may take to show what a test waits for (a loaded machine is slow).
const PAGE_WAIT: Duration = Duration::from_secs(15);

/// The W3C key of an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process and one browser session in it; both end when this drops.
pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    /// The browser's profile folder, which names its processes (`--user-data-dir=`).
    profile: String,
    http: reqwest::Client,
}

/// An element of the current page.
#[derive(Clone, Debug)]
pub struct Element(String);

/// Where chromedriver and chromium are, if installed.
pub fn installed() -> Option<(String, String)> {
    let find =
        |candidates: &[&str]| candidates.iter().find(|p| std::path::Path::new(p).exists()).map(|p| p.to_string());
    Some((find(&["/usr/bin/chromedriver"])?, find(&["/usr/bin/chromium", "/usr/bin/chromium-browser"])?))
}

impl Browser {
    /// Starts chromedriver and a headless Chromium of `width` × `height`. Without them installed:
    /// `None` with a message, except under `CI=true`, where the test fails.
    pub async fn start(width: u32, height: u32) -> Option<Self> {
        let Some((driver_path, chromium)) = installed() else {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI=true requires chromium and chromedriver (make test-tools installs them)");
            }
            eprintln!("chromium or chromedriver is not installed (make test-tools); skipping the browser part");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http.get(format!("{base}/status")).send().await;
            if let Ok(r) = ready
                && let Ok(status) = r.json::<Value>().await
                && status["value"]["ready"] == true
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not become ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         format!("--window-size={width},{height}"), "--lang=en-US"],
            },
        }}});
        let mut browser = Self { driver, base, session: String::new(), profile: String::new(), http };
        let created = browser.call(reqwest::Method::POST, "/session", Some(capabilities)).await;
        browser.session = created["sessionId"].as_str().expect("a session id").to_string();
        browser.profile = created["capabilities"]["chrome"]["userDataDir"]
            .as_str()
            .expect("chromedriver names the profile")
            .to_string();
        Some(browser)
    }

    /// The browser's profile folder, for [`running`].
    pub fn profile(&self) -> &str {
        &self.profile
    }

    /// Ends the session, which makes chromedriver quit the browser; blocking, because `drop`
    /// cannot await (and runs on a panic too). Its answer comes once the browser has quit.
    fn end_session(&self) {
        use std::io::{Read, Write};
        let Some(address) = self.base.strip_prefix("http://") else { return };
        let Ok(mut stream) = std::net::TcpStream::connect(address) else { return };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
        let request = format!(
            "DELETE /session/{} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            self.session
        );
        // The first bytes of the answer are enough (chromedriver may keep the connection open).
        if stream.write_all(request.as_bytes()).is_ok() {
            let _ = stream.read(&mut [0; 512]);
        }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = if path == "/session" {
            format!("{}{path}", self.base)
        } else {
            format!("{}/session/{}{path}", self.base, self.session)
        };
        let mut request = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            request = request.json(&b);
        } else if method == reqwest::Method::POST {
            request = request.json(&json!({}));
        }
        let response = request.send().await.expect("chromedriver answers");
        let status = response.status();
        let value: Value = response.json().await.expect("chromedriver answers JSON");
        assert!(status.is_success(), "WebDriver {method} {path}: {status}: {value}");
        value["value"].clone()
    }

    /// Opens `url` and waits for it to load.
    pub async fn go(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", Some(json!({"url": url}))).await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", None).await.as_str().unwrap_or_default().to_string()
    }

    /// Asks `probe` every 100 ms until it answers, for at most [`PAGE_WAIT`]; then fails with
    /// what `failure` says.
    async fn poll<T>(&self, mut probe: impl AsyncFnMut() -> Option<T>, failure: impl AsyncFnOnce() -> String) -> T {
        let deadline = Instant::now() + PAGE_WAIT;
        loop {
            if let Some(found) = probe().await {
                return found;
            }
            if Instant::now() >= deadline {
                panic!("{}", failure().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the current URL to end with `suffix`, and answers it.
    pub async fn wait_for_url(&self, suffix: &str) -> String {
        self.poll(
            async || Some(self.url().await).filter(|url| url.ends_with(suffix)),
            async || format!("the browser is at {}, not at …{suffix}: {}", self.url().await, self.source().await),
        )
        .await
    }

    /// Waits for the page's HTML to contain `needle`, and answers the HTML.
    pub async fn wait_for_text(&self, needle: &str) -> String {
        self.poll(
            async || Some(self.source().await).filter(|page| page.contains(needle)),
            async || format!("the page never showed `{needle}`: {}", self.source().await),
        )
        .await
    }

    /// The current page's HTML.
    pub async fn source(&self) -> String {
        self.call(reqwest::Method::GET, "/source", None).await.as_str().unwrap_or_default().to_string()
    }

    /// The first element `css` selects, waiting for it.
    pub async fn find(&self, css: &str) -> Element {
        let url = format!("{}/session/{}/element", self.base, self.session);
        let query = json!({"using": "css selector", "value": css});
        self.poll(
            async || {
                let response = self.http.post(&url).json(&query).send().await.ok()?;
                let v: Value = response.error_for_status().ok()?.json().await.ok()?;
                v["value"][ELEMENT].as_str().map(|id| Element(id.to_string()))
            },
            async || format!("no element matches `{css}` on {}", self.url().await),
        )
        .await
    }

    /// Clicks an element.
    pub async fn click(&self, element: &Element) {
        self.call(reqwest::Method::POST, &format!("/element/{}/click", element.0), None).await;
    }

    /// Types `text` into an element.
    pub async fn type_into(&self, element: &Element, text: &str) {
        self.call(reqwest::Method::POST, &format!("/element/{}/value", element.0), Some(json!({"text": text}))).await;
    }

    /// An element's visible text.
    pub async fn text(&self, element: &Element) -> String {
        let v = self.call(reqwest::Method::GET, &format!("/element/{}/text", element.0), None).await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// Saves a screenshot of the page as PNG at `path`.
    pub async fn screenshot(&self, path: &std::path::Path) {
        let v = self.call(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD.decode(v.as_str().unwrap()).unwrap();
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Runs `script` in the page (WebDriver's own channel: the page's CSP does not apply to it).
    pub async fn execute(&self, script: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", Some(json!({"script": script, "args": []}))).await
    }

    /// Resizes the window (a phone's screen, a laptop's).
    pub async fn resize(&self, width: u32, height: u32) {
        self.call(reqwest::Method::POST, "/window/rect", Some(json!({"width": width, "height": height}))).await;
    }

    /// Deletes every cookie of the current page's host.
    pub async fn delete_cookies(&self) {
        self.call(reqwest::Method::DELETE, "/cookie", None).await;
    }

    /// Presses a key (`\u{E004}` is Tab, `\u{E007}` Enter) in the focused element.
    pub async fn press(&self, key: &str) {
        let actions = json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
            {"type": "keyDown", "value": key}, {"type": "keyUp", "value": key}]}]});
        self.call(reqwest::Method::POST, "/actions", Some(actions)).await;
    }

    /// The focused element's outer HTML.
    pub async fn focused(&self) -> String {
        let active = self.call(reqwest::Method::GET, "/element/active", None).await;
        let id = active[ELEMENT].as_str().unwrap_or_default().to_string();
        let script = json!({"script": "return arguments[0].outerHTML", "args": [{ELEMENT: id}]});
        self.call(reqwest::Method::POST, "/execute/sync", Some(script)).await.as_str().unwrap_or_default().to_string()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Killing chromedriver alone leaves its Chromium running, orphaned, after the tests end:
        // end the session first.
        if !self.session.is_empty() {
            self.end_session();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Whether a process of the browser with this profile folder still runs (Linux: `/proc`).
pub fn running(profile: &str) -> bool {
    let flag = format!("--user-data-dir={profile}");
    let Ok(processes) = std::fs::read_dir("/proc") else { return false };
    processes.flatten().any(|p| {
        std::fs::read(p.path().join("cmdline"))
            .is_ok_and(|cmdline| cmdline.split(|b| *b == 0).any(|arg| arg == flag.as_bytes()))
    })
}
