//! A real headless browser for the tests: Debian's chromium, driven over the DevTools
//! protocol on its websocket. A page is opened with no network: every request that is
//! not for the page's own file is recorded and failed, and console errors, exceptions,
//! failed loads and the requests the page made are collected for the test to check.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

/// The browser the tests use, as `scripts/ensure-postgres.sh` installs it.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// How long one step (a launch, a load, a command's answer) may take before the test
/// fails instead of hanging; not a measurement.
const PATIENCE: Duration = Duration::from_secs(120);

pub struct Browser {
    child: Child,
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    /// The session of the page target.
    session: String,
    /// The file the page was loaded from; any other URL is an outside request.
    page_url: String,
    /// What the page did that a test may refuse.
    pub console_errors: Vec<String>,
    pub failed_requests: Vec<String>,
    pub outside_requests: Vec<String>,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    /// Starts chromium headless with a fresh profile in `profile`, opens one page, and
    /// sets it up: scripts disabled (the page must not need them), every outside
    /// request intercepted, console and network events reported.
    pub fn launch(profile: &Path) -> Browser {
        let mut command = Command::new(CHROMIUM);
        command.args([
            "--headless",
            "--disable-gpu",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--hide-scrollbars",
            "--mute-audio",
            "--remote-debugging-port=0",
            "--force-color-profile=srgb",
        ]);
        command.arg(format!("--user-data-dir={}", profile.display()));
        // As root, chromium refuses to start its sandbox.
        if unsafe { libc::geteuid() } == 0 {
            command.arg("--no-sandbox");
        }
        command
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("{CHROMIUM} starts (scripts/test.sh installs it): {e}"));
        let stderr = child.stderr.take().unwrap();
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = sender.send(url.trim().to_string());
                }
            }
        });
        let url = receiver
            .recv_timeout(PATIENCE)
            .expect("chromium announces its DevTools websocket");
        let (socket, _) = tungstenite::connect(url.as_str()).expect("connect to DevTools");
        if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
        }
        let mut browser = Browser {
            child,
            socket,
            next_id: 0,
            session: String::new(),
            page_url: String::new(),
            console_errors: Vec::new(),
            failed_requests: Vec::new(),
            outside_requests: Vec::new(),
        };
        let target = browser.browser_call("Target.createTarget", json!({"url": "about:blank"}));
        let attached = browser.browser_call(
            "Target.attachToTarget",
            json!({"targetId": target["targetId"], "flatten": true}),
        );
        browser.session = attached["sessionId"].as_str().unwrap().to_string();
        for domain in [
            "Page.enable",
            "Runtime.enable",
            "Log.enable",
            "Network.enable",
        ] {
            browser.call(domain, json!({}));
        }
        browser.call(
            "Emulation.setScriptExecutionDisabled",
            json!({"value": true}),
        );
        browser.call("Fetch.enable", json!({"patterns": [{"urlPattern": "*"}]}));
        browser
    }

    /// Loads a file and waits for its load event.
    pub fn open(&mut self, path: &Path) {
        self.page_url = format!("file://{}", path.display());
        let url = self.page_url.clone();
        self.call("Page.navigate", json!({ "url": url }));
        self.wait_for("Page.loadEventFired");
    }

    /// Evaluates an expression in the page and returns its value (as JSON).
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        );
        assert!(
            result.get("exceptionDetails").is_none(),
            "{expression}: {result}"
        );
        result["result"]["value"].clone()
    }

    /// Lays the page out at this width (and a phone's touch and scaling when `mobile`).
    pub fn resize(&mut self, width: u32, height: u32, mobile: bool) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        );
    }

    /// Emulates a media type (`print`, or "" for the screen) and a colour scheme.
    pub fn media(&mut self, media: &str, scheme: &str) {
        self.call(
            "Emulation.setEmulatedMedia",
            json!({"media": media, "features": [{"name": "prefers-color-scheme", "value": scheme}]}),
        );
    }

    /// A PNG of the whole page at the current width.
    pub fn screenshot(&mut self) -> Vec<u8> {
        let metrics = self.call("Page.getLayoutMetrics", json!({}));
        let size = &metrics["cssContentSize"];
        let (width, height) = (
            size["width"].as_f64().unwrap(),
            size["height"].as_f64().unwrap().min(16_000.0),
        );
        let shot = self.call(
            "Page.captureScreenshot",
            json!({
                "format": "png",
                "captureBeyondViewport": true,
                "clip": {"x": 0, "y": 0, "width": width, "height": height, "scale": 1}
            }),
        );
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap())
            .unwrap()
    }

    /// A command to the page's session; its result.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let session = self.session.clone();
        self.send(Some(&session), method, params)
    }

    fn browser_call(&mut self, method: &str, params: Value) -> Value {
        self.send(None, method, params)
    }

    fn send(&mut self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(message.to_string()))
            .expect("send to DevTools");
        let started = Instant::now();
        loop {
            assert!(started.elapsed() < PATIENCE, "{method} was not answered");
            let message = self.receive();
            if message["id"].as_u64() == Some(id) {
                assert!(message.get("error").is_none(), "{method}: {message}");
                return message["result"].clone();
            }
        }
    }

    /// Waits for an event of the page's session.
    fn wait_for(&mut self, event: &str) {
        let started = Instant::now();
        loop {
            assert!(started.elapsed() < PATIENCE, "no {event}");
            if self.receive()["method"] == event {
                return;
            }
        }
    }

    /// The next message, after noting what it says about the page and answering a
    /// paused request: the page's own file goes on, anything else is failed.
    fn receive(&mut self) -> Value {
        let message = loop {
            match self.socket.read().expect("read from DevTools") {
                Message::Text(text) => break serde_json::from_str::<Value>(&text).unwrap(),
                Message::Close(_) => panic!("chromium closed DevTools"),
                _ => continue,
            }
        };
        let params = &message["params"];
        match message["method"].as_str() {
            Some("Fetch.requestPaused") => {
                let url = params["request"]["url"].as_str().unwrap_or("").to_string();
                let id = params["requestId"].clone();
                self.next_id += 1;
                let (method, answer) = if url == self.page_url {
                    ("Fetch.continueRequest", json!({"requestId": id}))
                } else {
                    self.outside_requests.push(url);
                    (
                        "Fetch.failRequest",
                        json!({"requestId": id, "errorReason": "BlockedByClient"}),
                    )
                };
                let reply = json!({"id": self.next_id, "method": method, "params": answer,
                                   "sessionId": self.session});
                self.socket
                    .send(Message::text(reply.to_string()))
                    .expect("send to DevTools");
            }
            Some("Network.requestWillBeSent") => {
                let url = params["request"]["url"].as_str().unwrap_or("");
                if !url.is_empty() && url != self.page_url && url != "about:blank" {
                    self.outside_requests.push(url.to_string());
                }
            }
            Some("Network.loadingFailed") => {
                self.failed_requests.push(params.to_string());
            }
            Some("Runtime.exceptionThrown") => {
                self.console_errors.push(params.to_string());
            }
            Some("Runtime.consoleAPICalled") if params["type"] == "error" => {
                self.console_errors.push(params.to_string());
            }
            Some("Log.entryAdded") if params["entry"]["level"] == "error" => {
                self.console_errors.push(params["entry"].to_string());
            }
            _ => {}
        }
        message
    }
}

/// Whether a PNG shows something: more than a handful of colours, and at least 2% of
/// its pixels differ from the most common one (the background).
pub fn assert_not_blank(png_bytes: &[u8], what: &str) -> (u32, u32) {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut pixels).expect("a PNG frame");
    let channels = info.color_type.samples();
    let mut counts = std::collections::HashMap::new();
    for pixel in pixels[..info.buffer_size()].chunks(channels) {
        *counts.entry(pixel.to_vec()).or_insert(0u64) += 1;
    }
    let total = u64::from(info.width) * u64::from(info.height);
    let background = counts.values().copied().max().unwrap_or(0);
    assert!(
        counts.len() > 16 && (total - background) * 50 >= total,
        "{what} looks blank: {} colours, {} of {total} pixels off the background",
        counts.len(),
        total - background
    );
    (info.width, info.height)
}
