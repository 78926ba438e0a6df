//! Pipelining: tokio-postgres sends a request when its future is first polled, and the server
//! runs requests in the order they arrive. Polling a list of futures in order therefore sends
//! them all before the first answer comes back: one round trip for the list, and the statements
//! still run one after the other, each seeing what the previous ones wrote.

use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::task::Poll;

use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Error, Statement};

/// A boxed future that borrows the client and the parameters.
pub(crate) type Step<'a, T> = Pin<Box<dyn Future<Output = Result<T, Error>> + Send + 'a>>;

/// Runs every future to completion, polling them in list order each round, so their requests
/// go out in that order; returns their outputs in the same order.
pub(crate) async fn in_order<T>(mut steps: Vec<Step<'_, T>>) -> Vec<Result<T, Error>> {
    let mut outputs: Vec<Option<Result<T, Error>>> = steps.iter().map(|_| None).collect();
    poll_fn(|cx| {
        let mut pending = false;
        for (step, output) in steps.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match step.as_mut().poll(cx) {
                    Poll::Ready(result) => *output = Some(result),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    // Every output is `Some` once the poll above is ready.
    outputs.into_iter().flatten().collect()
}

/// A statement to execute with its parameters, as one step of a pipeline.
pub(crate) fn execute<'a>(
    client: &'a Client,
    statement: &'a Statement,
    params: Vec<&'a (dyn ToSql + Sync)>,
) -> Step<'a, u64> {
    Box::pin(client.execute_raw(statement, params))
}
