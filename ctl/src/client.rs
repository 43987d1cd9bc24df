//! Talking to the monitor group over HTTP: one replica at a time, in order, until one answers.
//!
//! Each attempt ends in one of five ways ([`Attempt`]). A replica that cannot be connected to
//! never saw the request, so the next one is always tried. A replica that says the group has
//! no leader (503) is passed over too; if none answers otherwise, the group has no leader.
//! A replica that took the request but failed or did not answer in time is passed over only for
//! read-only commands: a command that changes state may have been applied, and sending it
//! again elsewhere could apply it twice, so we stop and say so.
//!
//! Time: the whole run has one deadline (`--timeout`, MMM's 10 s). Each connection attempt
//! gets at most 1 s; a read-only attempt gets an equal share of what is left, so that one
//! silent replica cannot use up the time of the others; a state-changing one gets all of it.
//!
//! A `307 Temporary Redirect` (a follower pointing at the leader) is followed once, with the
//! same method and body. Proxies from the environment are ignored: the monitor is local.

use std::time::{Duration, Instant};

use mmm_core::api::{ApiError, CommandRequest};
use reqwest::blocking::{Client as Http, Response};
use reqwest::header::LOCATION;
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;

use crate::replicas::Replica;
use mmm_transport::{Channel, Transport};

/// How long one connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What to ask a replica.
#[derive(Debug, Clone, Copy)]
pub enum Request<'a> {
    /// `GET` a path.
    Get(&'static str),
    /// `POST` a command to `/api/command`.
    Command(&'a CommandRequest),
}

/// How one attempt at one replica ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt<T> {
    /// The replica answered.
    Answer(T),
    /// The replica could not be reached; it never saw the request.
    Unreachable(String),
    /// The replica answered 503: the group has no leader as far as it knows.
    NoLeader(String),
    /// The replica answered with another error, or with something that is not the API's.
    Failed(String),
    /// The replica took the request but gave no complete answer in time.
    NoReply(String),
}

/// How asking the group ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    /// A replica answered.
    Answer {
        /// The replica that was asked.
        replica: Replica,
        /// Its answer.
        value: T,
    },
    /// No replica could be reached.
    CannotConnect,
    /// Replicas answered, but none knew a leader.
    NoLeader {
        /// How many replicas answered at all.
        answered: usize,
        /// How many there are.
        total: usize,
    },
    /// A replica failed in a way that makes asking another one wrong or pointless.
    Failed(String),
}

/// An HTTP client with the run's deadline.
#[derive(Debug, Clone)]
pub struct Client {
    http: Http,
    deadline: Instant,
    timeout: Duration,
    /// `http` or `https`.
    scheme: &'static str,
}

impl Client {
    /// A client with the API token and TLS settings of `transport` whose requests must all be
    /// done within `timeout` from now.
    pub fn new(transport: &Transport, timeout: Duration) -> Result<Client, reqwest::Error> {
        let http = transport
            .blocking_client(Channel::Api)
            .connect_timeout(CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("mmm_control/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            http,
            deadline: Instant::now() + timeout,
            timeout,
            scheme: transport.scheme(),
        })
    }

    /// The time left before the deadline.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Asks the replicas in order until one answers (see the module doc for when the next one
    /// is tried). `note` hears, in words, what happened at each replica that did not answer.
    pub fn ask<T: DeserializeOwned>(
        &self,
        replicas: &[Replica],
        request: Request<'_>,
        retry_after_delivery: bool,
        note: &mut dyn FnMut(String),
    ) -> Outcome<T> {
        let mut answered = 0;
        let mut no_leader = 0;
        let mut last_failure = None;
        for (i, replica) in replicas.iter().enumerate() {
            let left = replicas.len() - i;
            let remaining = self.remaining();
            if remaining.is_zero() {
                note(format!(
                    "{replica}: not tried, the timeout of {} ran out",
                    seconds(self.timeout)
                ));
                continue;
            }
            let budget = if retry_after_delivery {
                let share = remaining / u32::try_from(left).unwrap_or(u32::MAX);
                share.max(CONNECT_TIMEOUT.min(remaining))
            } else {
                remaining
            };
            match self.attempt(replica, request, budget, note) {
                Attempt::Answer(value) => {
                    return Outcome::Answer {
                        replica: replica.clone(),
                        value,
                    }
                }
                Attempt::Unreachable(why) => note(format!("{replica}: {why}")),
                Attempt::NoLeader(why) => {
                    answered += 1;
                    no_leader += 1;
                    note(format!("{replica}: no leader: {why}"));
                }
                Attempt::Failed(why) | Attempt::NoReply(why) if !retry_after_delivery => {
                    note(format!("{replica}: {why}"));
                    return Outcome::Failed(format!(
                        "Monitor replica {replica}: {why}. The command may or may not have \
                         been applied: check with 'mmm_control show' before repeating it."
                    ));
                }
                Attempt::Failed(why) => {
                    answered += 1;
                    note(format!("{replica}: {why}"));
                    last_failure = Some(format!("Monitor replica {replica}: {why}"));
                }
                Attempt::NoReply(why) => {
                    note(format!("{replica}: {why}"));
                    last_failure = Some(format!("Monitor replica {replica}: {why}"));
                }
            }
        }
        if no_leader > 0 {
            Outcome::NoLeader {
                answered,
                total: replicas.len(),
            }
        } else if let Some(failure) = last_failure {
            Outcome::Failed(failure)
        } else {
            Outcome::CannotConnect
        }
    }

    /// One attempt at one replica, following one redirect.
    pub fn attempt<T: DeserializeOwned>(
        &self,
        replica: &Replica,
        request: Request<'_>,
        budget: Duration,
        note: &mut dyn FnMut(String),
    ) -> Attempt<T> {
        let path = match request {
            Request::Get(path) => path,
            Request::Command(_) => mmm_core::api::COMMAND_PATH,
        };
        let url = match Url::parse(&replica.address.url(self.scheme, path)) {
            Ok(url) => url,
            Err(e) => return Attempt::Unreachable(format!("bad URL: {e}")),
        };
        let started = Instant::now();
        let mut response = match self.send(&url, request, budget) {
            Ok(response) => response,
            Err(e) => return classify(&e, budget),
        };
        if is_redirect(response.status()) {
            let target = match redirect_target(&url, &response) {
                Ok(target) => target,
                Err(why) => return Attempt::Failed(why),
            };
            note(format!("{replica}: redirected to {target}"));
            let budget = budget.saturating_sub(started.elapsed());
            response = match self.send(&target, request, budget) {
                Ok(response) => response,
                Err(e) => return classify(&e, budget),
            };
            if is_redirect(response.status()) {
                return Attempt::Failed(format!(
                    "redirected twice (to {target}, then again); expected one hop to the leader"
                ));
            }
        }
        read_answer(response, budget)
    }

    fn send(
        &self,
        url: &Url,
        request: Request<'_>,
        budget: Duration,
    ) -> Result<Response, reqwest::Error> {
        let builder = match request {
            Request::Get(_) => self.http.get(url.clone()),
            Request::Command(command) => self.http.post(url.clone()).json(command),
        };
        builder.timeout(budget).send()
    }
}

fn is_redirect(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT
    )
}

/// Where a redirect points, resolved against the URL that was asked.
fn redirect_target(url: &Url, response: &Response) -> Result<Url, String> {
    let location = response
        .headers()
        .get(LOCATION)
        .ok_or_else(|| format!("answered {} without a Location", response.status()))?;
    let location = location
        .to_str()
        .map_err(|_| "answered a redirect with an unreadable Location".to_string())?;
    url.join(location)
        .map_err(|e| format!("answered a redirect to '{location}', which is not a URL: {e}"))
}

/// Turns an HTTP answer into an attempt's result.
fn read_answer<T: DeserializeOwned>(response: Response, budget: Duration) -> Attempt<T> {
    let status = response.status();
    if status.is_success() {
        return match response.json::<T>() {
            Ok(value) => Attempt::Answer(value),
            Err(e) if e.is_timeout() => Attempt::NoReply(no_reply(budget)),
            Err(e) => Attempt::Failed(format!("answered something unreadable: {}", cause(&e))),
        };
    }
    let text = response.text().unwrap_or_default();
    let message = serde_json::from_str::<ApiError>(&text)
        .map(|e| e.error)
        .unwrap_or_else(|_| {
            let text = text.trim();
            if text.is_empty() {
                status.to_string()
            } else {
                text.to_string()
            }
        });
    if status == StatusCode::SERVICE_UNAVAILABLE {
        Attempt::NoLeader(message)
    } else {
        Attempt::Failed(format!("answered {status}: {message}"))
    }
}

/// Classifies a failed request: not connected, or connected but no answer.
fn classify<T>(e: &reqwest::Error, budget: Duration) -> Attempt<T> {
    if e.is_connect() {
        if e.is_timeout() {
            Attempt::Unreachable(format!(
                "could not connect within {}",
                seconds(CONNECT_TIMEOUT.min(budget))
            ))
        } else {
            Attempt::Unreachable(cause(e))
        }
    } else if e.is_timeout() {
        Attempt::NoReply(no_reply(budget))
    } else {
        Attempt::NoReply(format!("the connection failed: {}", cause(e)))
    }
}

fn no_reply(budget: Duration) -> String {
    format!("no answer within {}", seconds(budget))
}

/// The innermost cause of an error, which says what actually happened ("Connection refused").
fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut inner = e;
    while let Some(source) = inner.source() {
        inner = source;
    }
    inner.to_string()
}

/// A duration in seconds to a tenth, as `--timeout` takes it: `10 s`, `1.5 s`.
pub fn seconds(d: Duration) -> String {
    let tenths = (d.as_millis() + 50) / 100;
    if tenths % 10 == 0 {
        format!("{} s", tenths / 10)
    } else {
        format!("{}.{} s", tenths / 10, tenths % 10)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::address::Address;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    fn replica(addr: std::net::SocketAddr) -> Replica {
        Replica {
            name: "mon1".into(),
            address: Address::from(addr),
        }
    }

    /// A port where nothing listens (it was free a moment ago).
    fn dead_addr() -> std::io::Result<std::net::SocketAddr> {
        TcpListener::bind("127.0.0.1:0")?.local_addr()
    }

    /// A server that answers one connection with `response`, then stops.
    fn answer_once(response: String) -> std::io::Result<std::net::SocketAddr> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(response.as_bytes());
            }
        });
        Ok(addr)
    }

    #[test]
    fn a_refused_connection_is_unreachable() -> Result<(), Box<dyn std::error::Error>> {
        let client = Client::new(
            &Transport::new(Default::default(), None),
            Duration::from_secs(5),
        )?;
        let got: Attempt<serde_json::Value> = client.attempt(
            &replica(dead_addr()?),
            Request::Get("/status"),
            Duration::from_secs(5),
            &mut |_| {},
        );
        assert!(matches!(got, Attempt::Unreachable(_)), "{got:?}");
        Ok(())
    }

    #[test]
    fn a_503_with_an_api_error_means_no_leader() -> Result<(), Box<dyn std::error::Error>> {
        let body = r#"{"error":"no leader"}"#;
        let response = format!(
            "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
             content-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let client = Client::new(
            &Transport::new(Default::default(), None),
            Duration::from_secs(5),
        )?;
        let got: Attempt<serde_json::Value> = client.attempt(
            &replica(answer_once(response)?),
            Request::Get("/status"),
            Duration::from_secs(5),
            &mut |_| {},
        );
        assert_eq!(got, Attempt::NoLeader("no leader".into()));
        Ok(())
    }

    #[test]
    fn a_silent_replica_gives_no_reply_within_the_budget() -> Result<(), Box<dyn std::error::Error>>
    {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let client = Client::new(
            &Transport::new(Default::default(), None),
            Duration::from_secs(5),
        )?;
        let started = Instant::now();
        let got: Attempt<serde_json::Value> = client.attempt(
            &replica(listener.local_addr()?),
            Request::Get("/status"),
            Duration::from_millis(300),
            &mut |_| {},
        );
        assert_eq!(got, Attempt::NoReply("no answer within 0.3 s".into()));
        assert!(started.elapsed() < Duration::from_secs(3));
        Ok(())
    }

    #[test]
    fn state_changing_commands_are_not_resent_after_a_failure(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let silent = TcpListener::bind("127.0.0.1:0")?;
        let client = Client::new(
            &Transport::new(Default::default(), None),
            Duration::from_millis(500),
        )?;
        let replicas = [replica(silent.local_addr()?), replica(dead_addr()?)];
        let request = CommandRequest {
            line: "set_passive".into(),
            linearizable: false,
        };
        let mut notes = Vec::new();
        let got: Outcome<serde_json::Value> =
            client.ask(&replicas, Request::Command(&request), false, &mut |n| {
                notes.push(n)
            });
        let Outcome::Failed(text) = got else {
            return Err(format!("expected a failure, got {got:?}").into());
        };
        assert!(text.contains("may or may not have been applied"), "{text}");
        assert_eq!(notes.len(), 1, "{notes:?}");
        Ok(())
    }

    #[test]
    fn all_replicas_unreachable_means_cannot_connect() -> Result<(), Box<dyn std::error::Error>> {
        let client = Client::new(
            &Transport::new(Default::default(), None),
            Duration::from_secs(5),
        )?;
        let replicas = [replica(dead_addr()?), replica(dead_addr()?)];
        let mut notes = Vec::new();
        let got: Outcome<serde_json::Value> =
            client.ask(&replicas, Request::Get("/status"), true, &mut |n| {
                notes.push(n)
            });
        assert_eq!(got, Outcome::CannotConnect);
        assert_eq!(notes.len(), 2);
        Ok(())
    }

    #[test]
    fn seconds_print_whole_or_to_a_tenth() {
        assert_eq!(seconds(Duration::from_secs(10)), "10 s");
        assert_eq!(seconds(Duration::from_millis(1500)), "1.5 s");
        assert_eq!(seconds(Duration::from_millis(998)), "1 s");
        assert_eq!(seconds(Duration::from_millis(260)), "0.3 s");
    }
}
