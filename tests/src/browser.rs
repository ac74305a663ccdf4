//! A headless Chromium of a test's own, driven over WebDriver: `chromedriver --port=<free>` as a
//! child process (in its own process group, killed with the browser it started when dropped)
//! and a [`fantoccini`] client. The network is closed to everything but 127.0.0.1 (host names
//! do not resolve, and any other address goes to a proxy that is not there), so a page that
//! loads anything from elsewhere visibly fails.
//!
//! `CHROMEDRIVER` and `CHROMIUM` name other binaries (default `/usr/bin/chromedriver`,
//! `/usr/bin/chromium`). Panics (failing the test loudly) when they are missing: the browser
//! tests never skip; `scripts/test` installs them.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// The window size of every browser (and so of the screenshots).
pub const WINDOW: (u32, u32) = (1280, 800);

/// How long [`Browser::wait_for`] and friends wait before failing.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A chromedriver child with one browser session.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Option<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

impl Browser {
    /// Starts chromedriver on a free port and a headless Chromium of 1280×800 through it.
    pub async fn start() -> Self {
        let chromedriver =
            std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".to_owned());
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        let port = free_port();
        let driver = Command::new(&chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start `{chromedriver}` ({e}): install chromium and chromium-driver \
                     (apt-get install chromium chromium-driver) or set CHROMEDRIVER and \
                     CHROMIUM; the browser tests never skip"
                )
            });
        let mut driver = Some(driver);
        let url = format!("http://127.0.0.1:{port}");
        let status = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(15);
        while !status
            .get(format!("{url}/status"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            if Instant::now() > deadline {
                kill_group(&mut driver);
                panic!("{chromedriver} did not listen on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (width, height) = WINDOW;
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    "--disable-extensions",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--hide-scrollbars",
                    format!("--window-size={width},{height}"),
                    // Nothing but the server under test: no name resolves, no other address is
                    // reachable.
                    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
                    "--proxy-server=127.0.0.1:9",
                    "--proxy-bypass-list=127.0.0.1",
                ],
            },
        });
        let Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = match ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&url)
            .await
        {
            Ok(client) => client,
            Err(e) => {
                kill_group(&mut driver);
                panic!("cannot start {chromium} through {chromedriver}: {e}");
            }
        };
        let browser = Self { client, driver };
        // The inner size is what a person sees: make the viewport 1280×800.
        let inner: Vec<u32> = serde_json::from_value(
            browser
                .script("return [window.innerWidth, window.innerHeight];")
                .await,
        )
        .expect("the viewport size");
        if inner != [width, height] {
            let (outer_width, outer_height) = (
                width + width.saturating_sub(inner[0]),
                height + height.saturating_sub(inner[1]),
            );
            let _ = browser
                .client
                .set_window_size(outer_width, outer_height)
                .await;
        }
        browser
    }

    /// Ends the session (the browser quits), then kills chromedriver.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(10), self.client.clone().close()).await;
        kill_group(&mut self.driver);
    }

    /// Opens `url` and waits until the page has loaded.
    pub async fn open(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
    }

    /// Runs `script` in the page and returns its value.
    pub async fn script(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("script {script}: {e}"))
    }

    /// The first element matching `css`, waiting for it to appear.
    pub async fn wait_for(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
        {
            Ok(element) => element,
            Err(e) => panic!("no `{css}` appeared on {}: {e}", self.here().await),
        }
    }

    /// Every element matching `css` now (none: empty).
    pub async fn all(&self, css: &str) -> Vec<Element> {
        self.client
            .find_all(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find `{css}`: {e}"))
    }

    /// The visible text of the first element matching `css` (waiting for it).
    pub async fn text(&self, css: &str) -> String {
        let element = self.wait_for(css).await;
        element
            .text()
            .await
            .unwrap_or_else(|e| panic!("the text of `{css}`: {e}"))
    }

    /// The visible texts of every element matching `css` now.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        for element in self.all(css).await {
            texts.push(element.text().await.unwrap_or_else(|e| panic!("text: {e}")));
        }
        texts
    }

    /// Polls `probe` (which may fail while a page reloads) until it returns `Some`; panics
    /// with `what` after [`PATIENCE`].
    pub async fn until<T, F, Fut>(&self, what: &str, mut probe: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<Option<T>, CmdError>>,
    {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(Some(value)) = probe().await {
                return value;
            }
            if Instant::now() > deadline {
                panic!("{what}: not within {PATIENCE:?} on {}", self.here().await);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the first element matching `css` (waiting for it).
    pub async fn click(&self, css: &str) {
        self.wait_for(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click `{css}`: {e}"));
    }

    /// Replaces the value of the input matching `css` with `text`, as a person types it.
    pub async fn type_into(&self, css: &str, text: &str) {
        let input = self.wait_for(css).await;
        input
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear `{css}`: {e}"));
        input
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into `{css}`: {e}"));
    }

    /// The current URL.
    pub async fn here(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|url| url.to_string())
            .unwrap_or_else(|e| format!("<no URL: {e}>"))
    }

    /// Forgets every cookie (signs out of everything).
    pub async fn forget_cookies(&self) {
        self.client
            .delete_all_cookies()
            .await
            .expect("delete the cookies");
    }

    /// The value of the cookie `name` of the current page, if any.
    pub async fn cookie(&self, name: &str) -> Option<String> {
        self.client
            .get_named_cookie(name)
            .await
            .ok()
            .map(|cookie| cookie.value().to_owned())
    }

    /// A PNG of the window, written to `path` when `CONSOLE_SCREENSHOTS=1` (so that ordinary
    /// runs do not rewrite the committed pictures).
    pub async fn screenshot(&self, path: &std::path::Path) {
        if std::env::var("CONSOLE_SCREENSHOTS").as_deref() != Ok("1") {
            return;
        }
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot: {e}"));
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).expect("the screenshot folder");
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }
}

/// Kills chromedriver and everything it started (the browser) by their process group.
fn kill_group(driver: &mut Option<Child>) {
    let Some(mut driver) = driver.take() else {
        return;
    };
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", driver.id())])
        .stderr(Stdio::null())
        .status();
    let _ = driver.kill();
    let _ = driver.wait();
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(&mut self.driver);
    }
}
