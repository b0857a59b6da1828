//! A monitor that survives server restarts.
//!
//! When the connection drops, every update the server commits until we are back is lost, so
//! the only safe way to resume is a new monitor whose initial reply is the complete current
//! state. [`ReconnectingMonitor`] does that and says so: after each (re)connection it yields
//! [`MonitorEvent::Initial`], and consumers must replace whatever they held.
//!
//! A consumer that falls behind is treated the same way. Each monitor's unread updates are
//! bounded ([`ClientOptions::max_monitor_backlog`]); past the bound the client drops them and
//! fails the monitor with [`Error::MonitorLagged`], which this type reports as
//! [`MonitorEvent::Disconnected`] and answers, after the backoff, with a new connection and a
//! fresh initial state. So a server that sends updates faster than they are consumed costs a
//! resync every so often, never unbounded memory.

use std::time::Duration;

use tokio::time::Instant;

use crate::client::{Client, ClientOptions, MonitorUpdates};
use crate::endpoint::{Endpoint, IntoEndpoint};
use crate::error::Error;
use crate::monitor::{MonitorRequest, TableUpdates2};
use crate::schema::DatabaseSchema;

/// Exponential backoff between connection attempts: `initial`, doubling each failure, never
/// more than `max`.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Option<Duration>,
}

impl Backoff {
    /// A backoff starting at `initial` and capped at `max`.
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            current: None,
        }
    }

    /// The delay before the next attempt; each call doubles it up to the cap.
    pub fn next_delay(&mut self) -> Duration {
        let delay = match self.current {
            None => self.initial,
            Some(previous) => previous.saturating_mul(2).min(self.max),
        };
        self.current = Some(delay);
        delay
    }

    /// Starts over from `initial` (after a success).
    pub fn reset(&mut self) {
        self.current = None;
    }
}

/// Settings of a [`ReconnectingMonitor`].
#[derive(Debug, Clone)]
pub struct ReconnectOptions {
    /// Settings for each connection.
    pub client: ClientOptions,
    /// The first delay after a failure.
    pub initial_backoff: Duration,
    /// The longest delay between attempts. OVS's own clients cap at 8 s.
    pub max_backoff: Duration,
}

impl Default for ReconnectOptions {
    fn default() -> Self {
        ReconnectOptions {
            client: ClientOptions::default(),
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(8),
        }
    }
}

/// What a [`ReconnectingMonitor`] reports.
#[derive(Debug)]
pub enum MonitorEvent {
    /// A monitor was (re)established. `state` is the complete current contents of the
    /// monitored tables: discard everything learned before. `generation` counts
    /// establishments, starting at 1, so `generation > 1` means "after a reconnect".
    Initial {
        /// 1 for the first connection, then +1 per reconnection.
        generation: u64,
        /// The database schema, fetched on every connection since the server may have been
        /// upgraded in between; needed to apply later updates with
        /// [`TableReplica`](crate::TableReplica).
        schema: DatabaseSchema,
        /// The initial rows.
        state: TableUpdates2,
    },
    /// A change since the last event.
    Update(TableUpdates2),
    /// The connection was lost, a connection attempt failed, or the consumer fell too far
    /// behind the updates ([`Error::MonitorLagged`]). The next call to
    /// [`ReconnectingMonitor::next`] waits `retry_in` and starts over.
    Disconnected {
        /// What went wrong.
        error: Error,
        /// The backoff delay before the next attempt.
        retry_in: Duration,
    },
}

/// A `monitor_cond` that reconnects with capped exponential backoff and re-establishes itself.
///
/// Drive it by calling [`next`](Self::next) in a loop; it never ends on its own (drop it to
/// stop). `next` is cancel-safe: dropping its future loses no update, at worst an attempt
/// in progress is repeated.
#[derive(Debug)]
pub struct ReconnectingMonitor {
    endpoint: Endpoint,
    database: String,
    requests: Vec<MonitorRequest>,
    options: ReconnectOptions,
    backoff: Backoff,
    connection: Option<MonitorUpdates<TableUpdates2>>,
    retry_at: Option<Instant>,
    generation: u64,
}

impl ReconnectingMonitor {
    /// Prepares a monitor of `requests` in `database`; nothing connects until
    /// [`next`](Self::next) is called.
    pub fn new(
        endpoint: impl IntoEndpoint,
        database: impl Into<String>,
        requests: Vec<MonitorRequest>,
        options: ReconnectOptions,
    ) -> Result<Self, Error> {
        Ok(ReconnectingMonitor {
            endpoint: endpoint.into_endpoint()?,
            database: database.into(),
            requests,
            backoff: Backoff::new(options.initial_backoff, options.max_backoff),
            options,
            connection: None,
            retry_at: None,
            generation: 0,
        })
    }

    /// How many times a monitor has been established so far.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The client of the current connection, if connected.
    pub fn client(&self) -> Option<&Client> {
        self.connection.as_ref().map(MonitorUpdates::client)
    }

    /// The next event.
    pub async fn next(&mut self) -> MonitorEvent {
        if let Some(updates) = &mut self.connection {
            let error = match updates.next().await {
                Some(Ok(update)) => return MonitorEvent::Update(update),
                Some(Err(error)) => error,
                None => Error::MonitorCanceled {
                    endpoint: self.endpoint.to_string(),
                    monitor_id: updates.monitor_id().to_owned(),
                },
            };
            // Any error (including an update we could not parse) leaves us unsure what the
            // server's state is; start over from a fresh initial state.
            self.connection = None;
            return self.schedule_retry(error);
        }
        if let Some(at) = self.retry_at {
            tokio::time::sleep_until(at).await;
            self.retry_at = None;
        }
        match self.establish().await {
            Ok((schema, state, updates)) => {
                self.backoff.reset();
                self.generation += 1;
                self.connection = Some(updates);
                MonitorEvent::Initial {
                    generation: self.generation,
                    schema,
                    state,
                }
            }
            Err(error) => self.schedule_retry(error),
        }
    }

    fn schedule_retry(&mut self, error: Error) -> MonitorEvent {
        let retry_in = self.backoff.next_delay();
        self.retry_at = Some(Instant::now() + retry_in);
        MonitorEvent::Disconnected { error, retry_in }
    }

    async fn establish(
        &self,
    ) -> Result<(DatabaseSchema, TableUpdates2, MonitorUpdates<TableUpdates2>), Error> {
        let client = Client::connect_with(&self.endpoint, self.options.client.clone()).await?;
        let schema = client.get_schema(&self.database).await?;
        let monitor = client.monitor_cond(&self.database, &self.requests).await?;
        Ok((schema, monitor.initial, monitor.updates))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(500));
        let delays: Vec<_> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, vec![100, 200, 400, 500, 500]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }
}
