//! What the relay spends on Cloudflare's price list, counted where it is
//! spent, for the benchmark's cost model (`bench/cost.mjs`): Worker
//! invocations, Durable Object requests (each stub call and alarm), SQLite
//! rows written (SQLite's own count), and queue messages written, read and
//! acknowledged. Kept per isolate (workerd runs the Worker and its objects
//! in one), never stored, and shown only when `BENCH_METER=1`
//! (`GET /__meter`): a deployment does not answer it.

use std::cell::Cell;

use serde::Serialize;
use worker::{SqlCursor, SqlStorage, SqlStorageValue};

/// The counts so far in this isolate.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct Meter {
    /// Invocations of the Worker's `fetch` and `queue` handlers.
    pub invocations: u64,
    /// Requests to Durable Objects: stub calls and alarms.
    pub do_requests: u64,
    /// Rows written by Durable Objects' SQL (and key-value puts, one row each).
    pub sqlite_rows_written: u64,
    /// Queue messages sent (one write each: every message is under 64 KB).
    pub queue_writes: u64,
    /// Queue messages handed to a consumer (one read each).
    pub queue_reads: u64,
    /// Queue messages acknowledged (one delete each).
    pub queue_deletes: u64,
}

thread_local! {
    static METER: Cell<Meter> = Cell::new(Meter::default());
}

/// Adds to the counts.
pub fn add(change: impl FnOnce(&mut Meter)) {
    METER.with(|cell| {
        let mut meter = cell.get();
        change(&mut meter);
        cell.set(meter);
    });
}

/// Counts the rows a statement wrote, and hands its cursor on.
pub fn written(cursor: SqlCursor) -> SqlCursor {
    let rows = cursor.rows_written() as u64;
    add(|m| m.sqlite_rows_written += rows);
    cursor
}

/// Runs a statement that writes, counting its rows: for objects that do
/// not answer the rows they wrote (the event store counts its own).
pub fn write(
    sql: &SqlStorage,
    query: &str,
    values: impl Into<Option<Vec<SqlStorageValue>>>,
) -> worker::Result<SqlCursor> {
    Ok(written(sql.exec(query, values)?))
}

/// The counts so far.
pub fn snapshot() -> Meter {
    METER.with(Cell::get)
}
