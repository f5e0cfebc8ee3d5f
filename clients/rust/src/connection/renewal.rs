//! Make-before-break: a replacement connection opened before the current one reaches its
//! maximum age, and the old one closed once its replies are in.

use tokio::time::Instant;

use super::conn::Conn;
use super::socket::open;
use super::{Task, normal_close};
use crate::error::Error;

impl Task {
    /// Opens a replacement before the connection reaches its maximum age.
    pub(super) async fn renew(&mut self) {
        match open(
            &self.setup.url,
            &self.setup.token,
            self.setup.options.connect_timeout,
        )
        .await
        {
            Ok((ws, exp)) => self.install(ws, exp, true).await,
            Err(e) => {
                tracing::warn!(error = %e, "could not open a replacement connection; retrying");
                if let Some(conn) = &mut self.conn {
                    conn.renew_at = Instant::now() + self.setup.options.backoff_max;
                }
            }
        }
    }

    /// Closes the replaced connection once its replies are in and the new one has every
    /// subscription.
    pub(super) async fn maybe_finish_draining(&mut self) {
        let done = self.draining.as_ref().is_some_and(Conn::idle)
            && self.conn.as_ref().is_some_and(|c| !c.resubscribing());
        if done {
            self.stop_draining().await;
        }
    }

    pub(super) async fn stop_draining(&mut self) {
        if let Some(mut old) = self.draining.take() {
            let _ = old.ws.close(Some(normal_close())).await;
            let retry = old.abandon(&Error::Disconnected, self.setup.options.resend_within);
            self.requeue(retry);
            self.flush().await;
        }
    }
}
