//! Unread request bodies are read to their end before the answer goes out. A server that
//! answers early (401 before the body, 413 after its first bytes, 415, 404 …) and then closes
//! the connection with the client's bytes still unread makes the kernel reset it: the client
//! then often sees a broken connection instead of the answer. [`Tracked`] hands a body that was
//! dropped unfinished back to the server, which reads on (and drops) up to [`DRAIN_LIMIT`]
//! bytes before it sends the response; the body deadline ([`crate::deadline`]) bounds how long
//! that can take. A body larger than that is cut off: hyper then closes the connection.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Bytes;
use futures::StreamExt;
use http_body::{Frame, SizeHint};

/// At most this much of an unread body is read before the answer.
pub const DRAIN_LIMIT: usize = 4 << 20;

type Boxed = Pin<Box<dyn http_body::Body<Data = Bytes, Error = axum::BoxError> + Send>>;

/// Where a body dropped before its end is left for the server.
#[derive(Clone, Default)]
pub struct Leftover(Arc<Mutex<Option<Boxed>>>);

impl Leftover {
    /// Reads and drops what is left of a body dropped unfinished, up to [`DRAIN_LIMIT`].
    pub async fn drain(&self) {
        let body = self.0.lock().ok().and_then(|mut slot| slot.take());
        let Some(body) = body else { return };
        let mut stream = axum::body::Body::new(body).into_data_stream();
        let mut read = 0usize;
        while let Some(Ok(chunk)) = stream.next().await {
            read = read.saturating_add(chunk.len());
            if read > DRAIN_LIMIT {
                break;
            }
        }
    }
}

/// A request body that, dropped before its end, leaves itself in a [`Leftover`].
pub struct Tracked {
    inner: Option<Boxed>,
    leftover: Leftover,
}

impl Tracked {
    /// Tracks `inner`.
    pub fn new<B>(inner: B, leftover: Leftover) -> Self
    where
        B: http_body::Body<Data = Bytes, Error = axum::BoxError> + Send + 'static,
    {
        Self {
            inner: Some(Box::pin(inner)),
            leftover,
        }
    }
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        match self.inner.as_mut() {
            Some(inner) => inner.as_mut().poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner
            .as_ref()
            .is_none_or(|inner| inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map(|inner| inner.size_hint())
            .unwrap_or_else(|| SizeHint::with_exact(0))
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            if !inner.is_end_stream() {
                if let Ok(mut slot) = self.leftover.0.lock() {
                    *slot = Some(inner);
                }
            }
        }
    }
}
