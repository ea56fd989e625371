//! Criterion benches of the core crate: signing, and planning + signing of 1
//! to 100,000 receivers. `cargo bench --bench core`; `bench/run` runs it with
//! everything else and prints the figures beside their baselines.
//!
//! The binary also measures memory, with a counting global allocator that is
//! switched off while criterion times (so timings pay one relaxed load per
//! allocation, nothing more):
//! - after the benches it prints the peak heap that planning + signing `n`
//!   receivers allocates above what was live before (the input notification
//!   is built first and not counted), and writes it as JSON to the file named
//!   by `YUNXIN_BENCH_OUT` when that is set;
//! - with `YUNXIN_BENCH_PEAK=n` it only builds the notification, plans and
//!   signs it once and prints one JSON line, so that `/usr/bin/time -v` can
//!   report the whole process's maximum resident set size for that `n`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use yunxin_edge::{
    AppSecret, BatchNotification, Content, Credentials, CurTime, Endpoint, Nonce, Plan,
    PlanOptions, SignedRequest, checksum,
};

/// The system allocator, counting live bytes while [`COUNTING`] is on.
struct CountingAllocator;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn record(delta: isize) {
    if COUNTING.load(Ordering::Relaxed) {
        let live = LIVE.fetch_add(delta, Ordering::Relaxed) + delta;
        PEAK.fetch_max(live, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded unchanged to `System`; the counters only
// observe sizes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc(layout) };
        if !ptr.is_null() {
            record(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let ptr = unsafe { System.alloc_zeroed(layout) };
        if !ptr.is_null() {
            record(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        record(-(layout.size() as isize));
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let new = unsafe { System.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            record(new_size as isize - layout.size() as isize);
        }
        new
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Receiver counts of the planning benches.
const SIZES: [usize; 4] = [1, 500, 10_000, 100_000];

// A 12-hex-character secret like the console's, a 32-hex nonce and a 10-digit
// CurTime: 54 bytes, one SHA-1 block, as every real call.
const APP_KEY: &str = "bench-app-key-0123456789abcdef";
const APP_SECRET: &str = "a1b2c3d4e5f6";
const NONCE: &str = "0123456789abcdef0123456789abcdef";
const CUR_TIME: u64 = 1_795_745_094;

fn credentials() -> Credentials {
    Credentials::new(APP_KEY, APP_SECRET)
}

/// What the relay plans for an event: `n` receivers `user{i}`.
fn notification(n: usize) -> BatchNotification {
    BatchNotification::new("ops-bot", Content::text("deploy finished"))
        .to((0..n).map(|i| format!("user{i}")))
}

/// Plans with trace ids derived from an event id (as the relay does) and
/// signs every call with the clock and a fresh random nonce.
fn plan_and_sign(
    notification: &BatchNotification,
    credentials: &Credentials,
    endpoint: &Endpoint,
) -> Vec<SignedRequest> {
    let options = PlanOptions::for_event("evt_2zvJ3bench");
    Plan::new(notification, &options)
        .expect("the bench notification is valid")
        .sign(credentials, endpoint)
        .expect("the platform has a random source")
}

fn signing(c: &mut Criterion) {
    let credentials = credentials();
    let secret = AppSecret::new(APP_SECRET);
    let cur_time = CUR_TIME.to_string();
    let nonce = Nonce::new(NONCE).expect("a valid nonce");

    let mut group = c.benchmark_group("sign");
    group.throughput(Throughput::Elements(1));
    group.bench_function("checksum", |b| {
        b.iter(|| checksum(&secret, black_box(NONCE), black_box(&cur_time)))
    });
    group.bench_function("sign_at", |b| {
        b.iter(|| credentials.sign_at(CurTime(black_box(CUR_TIME)), nonce.clone()))
    });
    group.bench_function("sign", |b| b.iter(|| credentials.sign()));
    group.finish();
}

fn planning(c: &mut Criterion) {
    let credentials = credentials();
    let endpoint = Endpoint::default();
    let mut group = c.benchmark_group("plan_sign");
    for n in SIZES {
        let notification = notification(n);
        if n >= 10_000 {
            group.sample_size(10);
            group.measurement_time(Duration::from_secs(4));
        }
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &notification, |b, input| {
            b.iter(|| plan_and_sign(input, &credentials, &endpoint))
        });
    }
    group.finish();
}

/// Planning + signing `n` receivers once, with the allocator counting.
struct MemoryFigure {
    receivers: usize,
    requests: usize,
    input_bytes: isize,
    peak_bytes: isize,
    retained_bytes: isize,
    wall_ns: u128,
}

fn measure_memory(n: usize) -> MemoryFigure {
    let credentials = credentials();
    let endpoint = Endpoint::default();

    LIVE.store(0, Ordering::SeqCst);
    PEAK.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let input = notification(n);
    let input_bytes = LIVE.load(Ordering::SeqCst);

    PEAK.store(input_bytes, Ordering::SeqCst);
    let started = Instant::now();
    let requests = plan_and_sign(&input, &credentials, &endpoint);
    let wall_ns = started.elapsed().as_nanos();
    let peak_bytes = PEAK.load(Ordering::SeqCst) - input_bytes;
    let retained_bytes = LIVE.load(Ordering::SeqCst) - input_bytes;
    COUNTING.store(false, Ordering::SeqCst);

    let figure = MemoryFigure {
        receivers: n,
        requests: requests.len(),
        input_bytes,
        peak_bytes,
        retained_bytes,
        wall_ns,
    };
    drop(black_box(requests));
    drop(input);
    figure
}

impl MemoryFigure {
    fn json(&self) -> String {
        format!(
            "{{\"receivers\":{},\"requests\":{},\"input_bytes\":{},\"peak_bytes\":{},\"retained_bytes\":{},\"wall_ns\":{}}}",
            self.receivers,
            self.requests,
            self.input_bytes,
            self.peak_bytes,
            self.retained_bytes,
            self.wall_ns
        )
    }
}

fn main() {
    if let Ok(n) = std::env::var("YUNXIN_BENCH_PEAK") {
        let n: usize = n.parse().expect("YUNXIN_BENCH_PEAK is a receiver count");
        println!("{}", measure_memory(n).json());
        return;
    }

    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .configure_from_args();
    signing(&mut criterion);
    planning(&mut criterion);
    criterion.final_summary();

    let figures: Vec<MemoryFigure> = SIZES.iter().map(|&n| measure_memory(n)).collect();
    println!("\nheap allocated by planning + signing (the input notification not counted):");
    for f in &figures {
        println!(
            "plan_sign/{:<7} {:>4} calls  peak {:>11} B  ({:>6.1} B/receiver)  still held by the result {:>11} B  input {:>10} B",
            f.receivers,
            f.requests,
            f.peak_bytes,
            f.peak_bytes as f64 / f.receivers as f64,
            f.retained_bytes,
            f.input_bytes
        );
    }
    if let Ok(path) = std::env::var("YUNXIN_BENCH_OUT") {
        let body: Vec<String> = figures.iter().map(MemoryFigure::json).collect();
        std::fs::write(&path, format!("[{}]\n", body.join(",")))
            .unwrap_or_else(|e| panic!("cannot write {path}: {e}"));
    }
}
